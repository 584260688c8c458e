package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/internal/proc"
)

// Info is an immutable picture of one instance, published on every change. Readers (jlist, ls,
// the registry) use it and never wait on the instance's goroutine.
type Info struct {
	ID        int
	Index     int
	Name      string
	Spec      *config.AppSpec
	Status    Status
	Pid       int
	StartTick uint64 // with Pid, identifies the process across a daemon crash
	History   History
	Started   time.Time // wall clock of the last start (pm_uptime)
	Created   time.Time // PM2's created_at
	ExitCode  *int
	OutLog    string
	ErrLog    string
	LogFile   string
}

type cmdKind int

const (
	cmdStart cmdKind = iota
	cmdStop
	cmdRestart
	cmdDelete
	cmdSignal
)

type command struct {
	kind  cmdKind
	sig   unix.Signal
	spec  *config.AppSpec // for start/restart: a new spec to apply
	reply chan error
}

// Instance is one process slot of an app, owned by one goroutine (run). Only that goroutine
// touches the fields below the line; everyone else talks to it through cmds or reads info.
type Instance struct {
	id    int
	index int
	sup   *Supervisor
	cmds  chan command
	info  atomic.Pointer[Info]
	done  chan struct{}
	log   *slog.Logger
	ready chan struct{} // a 'ready' message arrived on IPC

	// --- owned by run ---
	spec       *config.AppSpec
	status     Status
	hist       History
	pid        int
	startTick  uint64
	exitCh     <-chan proc.Exit
	handles    *proc.Handles
	channel    *ipc.Channel
	started    time.Time // monotonic, for uptime
	startedAt  time.Time
	created    time.Time
	exitCode   *int
	files      []*logs.File // out, err, combined (may be nil entries)
	paths      [3]string
	timer      *time.Timer // restart delay or readiness timeout
	timerFor   Status
	waiters    []chan error // start/restart replies waiting for online
	stopReason string
}

func newInstance(sup *Supervisor, id, index int, spec *config.AppSpec, hist History, status Status) *Instance {
	in := &Instance{
		id: id, index: index, sup: sup, spec: spec, status: status, hist: hist,
		cmds: make(chan command, 16),
		done: make(chan struct{}),
		log:  sup.log.With("app", spec.Name, "instance", id),
	}
	in.created = time.Now()
	in.publish()
	go in.run()
	return in
}

// Info returns the last published picture.
func (in *Instance) Info() *Info { return in.info.Load() }

// ID is the instance's pm_id.
func (in *Instance) ID() int { return in.id }

func (in *Instance) do(c command) error {
	c.reply = make(chan error, 1)
	select {
	case in.cmds <- c:
	case <-in.done:
		return fmt.Errorf("%w: app %q (id %d) was deleted meanwhile", ErrNotFound, in.Info().Name, in.id)
	}
	select {
	case err := <-c.reply:
		return err
	case <-in.done:
		return fmt.Errorf("%w: app %q (id %d) was deleted meanwhile", ErrNotFound, in.Info().Name, in.id)
	}
}

func (in *Instance) publish() {
	i := &Info{
		ID: in.id, Index: in.index, Name: in.spec.Name, Spec: in.spec, Status: in.status,
		Pid: in.pid, StartTick: in.startTick, History: in.hist, Started: in.startedAt,
		Created: in.created, ExitCode: in.exitCode,
		OutLog: in.paths[0], ErrLog: in.paths[1], LogFile: in.paths[2],
	}
	if in.paths[0] == "" {
		i.OutLog, i.ErrLog, i.LogFile = in.sup.logPaths(in.spec, in.id)
	}
	in.info.Store(i)
	in.sup.changed()
}

func (in *Instance) setStatus(s Status) {
	if s == in.status {
		return
	}
	if err := checkTransition(in.status, s); err != nil {
		// A bug, not a user error: say so loudly and keep the daemon going.
		in.log.Error("state machine", "err", err)
	}
	in.status = s
	in.publish()
}

func (in *Instance) run() {
	defer close(in.done)
	for {
		var timerC <-chan time.Time
		if in.timer != nil {
			timerC = in.timer.C
		}
		select {
		case c := <-in.cmds:
			if in.handle(c) {
				return
			}
		case e := <-in.exitCh:
			in.safely(func() { in.onExit(e) })
		case <-in.ready:
			in.safely(in.onReady)
		case <-timerC:
			in.timer = nil
			in.safely(in.onTimer)
		}
	}
}

// safely keeps a bug in one instance's handling from taking the daemon down.
func (in *Instance) safely(f func()) {
	defer func() {
		if p := recover(); p != nil {
			in.log.Error("panic in instance", "panic", fmt.Sprint(p))
		}
	}()
	f()
}

func (in *Instance) handle(c command) (exit bool) {
	var err error
	in.safely(func() {
		switch c.kind {
		case cmdStart:
			err = in.start(c.spec, c.reply)
			if err == nil {
				c.reply = nil // answered when the instance is online
			}
		case cmdRestart:
			in.stop("restart")
			in.hist.Restarts++
			in.hist.Unstable = 0
			err = in.start(c.spec, c.reply)
			if err == nil {
				c.reply = nil
			}
		case cmdStop:
			err = in.stop("stop")
		case cmdDelete:
			err = in.stop("delete")
			in.closeFiles()
			exit = true
		case cmdSignal:
			if in.pid == 0 {
				err = fmt.Errorf("%w: app %q (id %d) is not running", ErrNotRunning, in.spec.Name, in.id)
			} else if e := unix.Kill(in.pid, c.sig); e != nil {
				err = fmt.Errorf("send %s to pid %d: %w", unix.SignalName(c.sig), in.pid, e)
			}
		}
	})
	answer(c.reply, err)
	return exit
}

// answer replies without ever blocking the instance: each reply channel has room for one
// answer, and a second one (after a panic in the middle of a start) is dropped.
func answer(ch chan error, err error) {
	if ch == nil {
		return
	}
	select {
	case ch <- err:
	default:
	}
}

// ErrNotRunning is returned for an action that needs a running process.
var ErrNotRunning = errors.New("not running")

// start spawns the process. reply, if not nil, is answered once the instance is online (or
// failed); start answers nothing itself when it returns nil.
func (in *Instance) start(spec *config.AppSpec, reply chan error) error {
	if spec != nil && spec != in.spec {
		in.spec = spec
		in.closeFiles()
		in.log = in.sup.log.With("app", spec.Name, "instance", in.id)
	}
	if in.pid != 0 {
		answer(reply, nil)
		return nil
	}
	in.cancelTimer()
	if in.sup.isClosing() {
		// Nothing may be spawned once the daemon is stopping: it would outlive it.
		in.setStatus(Stopped)
		return ErrClosing
	}
	in.setStatus(Launching)
	if err := in.spawn(); err != nil {
		in.log.Error("start failed", "err", err)
		in.setStatus(Errored)
		return err
	}
	if reply != nil {
		in.waiters = append(in.waiters, reply)
	}
	if in.spec.WaitReady {
		in.armTimer(in.spec.ListenTimeout, Launching)
	} else {
		in.becomeOnline()
	}
	return nil
}

func (in *Instance) becomeOnline() {
	in.cancelTimer()
	in.setStatus(Online)
	for _, w := range in.waiters {
		answer(w, nil)
	}
	in.waiters = nil
}

func (in *Instance) failWaiters(err error) {
	for _, w := range in.waiters {
		answer(w, err)
	}
	in.waiters = nil
}

func (in *Instance) onReady() {
	if in.status == Launching && in.pid != 0 {
		in.log.Info("ready")
		in.becomeOnline()
	}
}

func (in *Instance) onTimer() {
	switch in.timerFor {
	case Launching:
		// PM2 proceeds when listen_timeout passes without 'ready'; so do we, and say so.
		if in.status == Launching && in.pid != 0 {
			in.log.Warn("no ready message within listen_timeout; marking online", "timeout", in.spec.ListenTimeout)
			in.becomeOnline()
		}
	case Waiting:
		if in.status == Waiting {
			if err := in.start(nil, nil); err != nil {
				in.log.Error("restart failed", "err", err)
			}
		}
	}
}

func (in *Instance) armTimer(d time.Duration, purpose Status) {
	in.cancelTimer()
	in.timer = time.NewTimer(d)
	in.timerFor = purpose
}

func (in *Instance) cancelTimer() {
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
}

func (in *Instance) openFiles() error {
	if in.files != nil {
		return nil
	}
	out, errp, comb := in.sup.logPaths(in.spec, in.id)
	in.paths = [3]string{out, errp, comb}
	files := make([]*logs.File, 3)
	for i, p := range in.paths {
		f, err := in.sup.files.Open(p)
		if err != nil {
			for _, g := range files {
				g.Close()
			}
			return fmt.Errorf("open log file: %w", err)
		}
		files[i] = f
	}
	in.files = files
	return nil
}

func (in *Instance) closeFiles() {
	for _, f := range in.files {
		f.Close()
	}
	in.files = nil
	in.paths = [3]string{}
}

func (in *Instance) env() []string {
	env := make(map[string]string, len(in.spec.Env)+6)
	for k, v := range in.spec.Env {
		env[k] = v
	}
	// PM2's per-process variables; apps and scripts read them.
	env["pm_id"] = strconv.Itoa(in.id)
	env["name"] = in.spec.Name
	env["namespace"] = in.spec.Namespace
	iv := in.spec.InstanceVar
	if iv == "" {
		iv = config.DefaultInstanceVar
	}
	env[iv] = strconv.Itoa(in.index)
	env["TEND_HOME"] = in.sup.home
	if in.spec.NodeIPC {
		env["NODE_CHANNEL_FD"] = strconv.Itoa(proc.IPCChildFd)
		env["NODE_CHANNEL_SERIALIZATION_MODE"] = "json"
	}
	return config.EnvList(env)
}

func (in *Instance) spawn() error {
	if err := in.openFiles(); err != nil {
		return err
	}
	h, err := proc.NewHandles(in.spec.NodeIPC)
	if err != nil {
		return err
	}
	pid, exitCh, err := in.sup.reaper.Start(proc.Cmd{
		Argv:  in.spec.Command(),
		Env:   in.env(),
		Dir:   in.spec.Cwd,
		Files: h.ChildFiles(),
	})
	h.CloseChildEnds()
	if err != nil {
		unix.Close(h.OutR)
		unix.Close(h.ErrR)
		h.CloseStdin()
		if h.IPC >= 0 {
			unix.Close(h.IPC)
		}
		return fmt.Errorf("start %q: %w", in.spec.Name, err)
	}
	in.pid, in.exitCh, in.handles = pid, exitCh, h
	in.started = time.Now()
	in.startedAt = in.started
	if st, err := proc.ReadStat(pid); err == nil {
		in.startTick = st.StartTicks
	}
	in.log.Info("started", "pid", pid, "cmd", strings.Join(in.spec.Command(), " "))

	date, _ := in.sup.dateFormat(in.spec.LogDateFormat)
	// Each reader holds its own references: a delete or a new spec closes the instance's files
	// while the pipe may still hold output, which the reader writes before it lets go.
	outCfg := logs.StreamConfig{Files: []*logs.File{in.files[0].Retain(), in.files[2].Retain()}, Date: date}
	errCfg := logs.StreamConfig{Files: []*logs.File{in.files[1].Retain(), in.files[2].Retain()}, Date: date}
	if in.sup.echoOut != nil {
		outCfg.Echo, errCfg.Echo = in.sup.echoOut, in.sup.echoErr
	}
	in.pump(h.OutR, outCfg)
	in.pump(h.ErrR, errCfg)
	h.OutR, h.ErrR = -1, -1 // owned by the pumps now

	if h.IPC >= 0 {
		ch, err := ipc.Open(h.IPC)
		h.IPC = -1
		if err != nil {
			in.log.Warn("ipc channel", "err", err)
		} else {
			in.channel = ch
			// A channel of this run's own: a late 'ready' of an earlier run cannot mark this one online.
			ready := make(chan struct{}, 1)
			in.ready = ready
			go func() {
				defer func() { recover() }()
				_ = ch.Serve(func(m ipc.Message) {
					if m.IsString("ready") {
						select {
						case ready <- struct{}{}:
						default:
						}
					}
				})
			}()
		}
	}
	in.publish()
	return nil
}

// pump runs a log reader for one pipe; it ends at EOF, when every writer of the pipe (the app
// and any child it passed its stdout to) is gone.
func (in *Instance) pump(fd int, cfg logs.StreamConfig) {
	log := in.log
	go func() {
		defer func() {
			for _, f := range cfg.Files {
				f.Close()
			}
		}()
		defer unix.Close(fd)
		defer func() {
			if p := recover(); p != nil {
				log.Error("log reader panic", "panic", fmt.Sprint(p))
			}
		}()
		if err := logs.Pump(fd, cfg); err != nil {
			log.Warn("log reader", "err", err)
		}
	}()
}

// releaseRun drops what belonged to the run that just ended.
func (in *Instance) releaseRun() {
	if in.handles != nil {
		in.handles.CloseStdin()
		in.handles = nil
	}
	if in.channel != nil {
		in.channel.Close()
		in.channel = nil
	}
	in.ready = nil
	in.pid, in.exitCh, in.startTick = 0, nil, 0
}

func (in *Instance) onExit(e proc.Exit) {
	uptime := time.Since(in.started)
	pgid := in.pid
	code := e.Code
	in.exitCode = &code
	in.log.Info("exited", "pid", e.Pid, "exit_code", e.Code, "signal", sigName(e.Signal), "uptime", uptime.Round(time.Millisecond))
	in.releaseRun()
	if in.spec.Treekill {
		// Children the app left behind would hold its port and outlive it (PM2 pain 10).
		go cleanupGroup(pgid, in.spec)
	}
	if in.status == Launching {
		in.failWaiters(fmt.Errorf("app %q exited before it was ready (%s)", in.spec.Name, e))
	}
	d, h := Decide(in.spec, in.hist, uptime, code)
	in.hist = h
	switch d.Action {
	case Stop:
		in.setStatus(Stopped)
	case Give:
		in.log.Error("too many unstable restarts; not restarting", "max_restarts", in.spec.MaxRestarts, "min_uptime", in.spec.MinUptime)
		in.setStatus(Errored)
	case Restart:
		in.setStatus(Waiting)
		if d.Delay <= 0 {
			if err := in.start(nil, nil); err != nil {
				in.log.Error("restart failed", "err", err)
			}
			return
		}
		in.armTimer(d.Delay, Waiting)
	}
}

func sigName(s unix.Signal) string {
	if s == 0 {
		return ""
	}
	return unix.SignalName(s)
}

func cleanupGroup(pgid int, spec *config.AppSpec) {
	defer func() { recover() }()
	if !proc.Alive(pgid, nil) {
		return
	}
	sig, _ := config.ParseSignal(spec.KillSignal)
	proc.SignalTree(pgid, nil, sig)
	if !proc.WaitGone(pgid, nil, spec.KillTimeout) {
		proc.SignalTree(pgid, nil, unix.SIGKILL)
	}
}

// stop ends the running process, if any: kill_signal to its whole tree, then SIGKILL after
// kill_timeout. It returns once the process is reaped and its tree is gone (or SIGKILLed).
func (in *Instance) stop(reason string) error {
	in.cancelTimer()
	if in.pid == 0 {
		if in.status != Stopped {
			in.setStatus(Stopped)
		}
		return nil
	}
	in.failWaiters(fmt.Errorf("app %q was stopped before it was ready", in.spec.Name))
	in.setStatus(Stopping)
	pid := in.pid
	sig, err := config.ParseSignal(in.spec.KillSignal)
	if err != nil {
		sig = unix.SIGINT
	}
	var tree []int
	if in.spec.Treekill {
		tree = proc.Tree(pid, pid)
		proc.SignalTree(pid, tree, sig)
	} else {
		_ = unix.Kill(pid, sig)
	}
	in.log.Info("stopping", "pid", pid, "signal", unix.SignalName(sig), "reason", reason)
	t0 := time.Now()
	deadline := time.NewTimer(in.spec.KillTimeout)
	defer deadline.Stop()
	var exit proc.Exit
	exited := false
	select {
	case exit = <-in.exitCh:
		exited = true
	case <-deadline.C:
	}
	var stopErr error
	if in.spec.Treekill {
		// The leader is gone (or late); the rest of its tree gets what is left of kill_timeout.
		left := max(in.spec.KillTimeout-time.Since(t0), 0)
		if !exited || !proc.WaitGone(pid, tree, left) {
			if !exited { // the app may have forked while shutting down
				tree = append(tree, proc.Tree(pid, pid)...)
			}
			in.log.Warn("kill_timeout passed; sending SIGKILL", "pid", pid, "kill_timeout", in.spec.KillTimeout)
			proc.SignalTree(pid, tree, unix.SIGKILL)
		}
	} else if !exited {
		in.log.Warn("kill_timeout passed; sending SIGKILL", "pid", pid, "kill_timeout", in.spec.KillTimeout)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if !exited {
		select {
		case exit = <-in.exitCh:
		case <-time.After(5 * time.Second):
			stopErr = fmt.Errorf("app %q pid %d did not die after SIGKILL", in.spec.Name, pid)
		}
	}
	code := exit.Code
	in.exitCode = &code
	in.log.Info("stopped", "pid", pid, "exit_code", exit.Code, "signal", sigName(exit.Signal))
	in.releaseRun()
	in.setStatus(Stopped)
	return stopErr
}

// logPaths gives PM2's log file names: <name>-out.log and <name>-error.log in the logs folder,
// with -<pm_id> for the instances of a cluster-mode or multi-instance app, unless merged.
func (s *Supervisor) logPaths(spec *config.AppSpec, id int) (out, errp, combined string) {
	suffix := ""
	if SeparateLogs(spec) {
		suffix = "-" + strconv.Itoa(id)
	}
	pick := func(given, kind string) string {
		if given == "" {
			return filepath.Join(s.logDir, spec.Name+"-"+kind+suffix+".log")
		}
		if given == "/dev/null" || given == "NULL" {
			return "/dev/null"
		}
		if !filepath.IsAbs(given) {
			given = filepath.Join(spec.Cwd, given)
		}
		if suffix != "" {
			ext := filepath.Ext(given)
			given = strings.TrimSuffix(given, ext) + suffix + ext
		}
		return given
	}
	out, errp = pick(spec.OutFile, "out"), pick(spec.ErrFile, "error")
	if spec.LogFile != "" {
		combined = pick(spec.LogFile, "")
	}
	return out, errp, combined
}

// SeparateLogs reports whether each instance of the app gets its own log files (PM2's -<pm_id>).
func SeparateLogs(spec *config.AppSpec) bool {
	return !spec.MergeLogs && (spec.ExecMode == config.ClusterMode || spec.Instances > 1)
}
