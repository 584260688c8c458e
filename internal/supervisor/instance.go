package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/sockets"
	"github.com/tend-sh/tend/internal/state"
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

	channel *ipc.Channel // the current process's IPC channel, for messages (nil without one)

	Listening []int        // the ports the app's sockets listen on
	Others    []state.Proc // the replacement and draining processes of a reload
}

type cmdKind int

const (
	cmdStart cmdKind = iota
	cmdStop
	cmdRestart
	cmdReload
	cmdDelete
	cmdSignal
	cmdRespec // take a new spec without touching the process (scale changes only the count)
	cmdStdin  // write a line to the process's stdin (PM2's send)
)

type command struct {
	kind  cmdKind
	sig   unix.Signal
	spec  *config.AppSpec // for start/restart/respec: a new spec to apply
	drain bool            // for delete: let the process finish its requests first (scale down)
	line  []byte          // for stdin
	reply chan error
}

type evKind int

const (
	evExit         evKind = iota
	evReady               // the app said ready (process.send('ready'), pkg/worker)
	evListening           // the app listens on its slot socket (Node cluster 'listening', the shim)
	evListenFailed        // the app asked for a port tend could not give it
)

// event is something a run reports to its instance's goroutine.
type event struct {
	r    *run
	kind evKind
	err  error
}

// run is one process of an instance and every kernel object it owns (DESIGN rule 2). An
// instance has one run, and two while a reload starts the replacement beside the old one.
type run struct {
	pid       int
	startTick uint64
	spec      *config.AppSpec // specs are never changed once made; safe to read anywhere
	log       *slog.Logger
	handles   *proc.Handles
	channel   *ipc.Channel
	started   time.Time // monotonic, for uptime
	startedAt time.Time
	shim      bool   // a Node the cluster protocol does not fit: the preload asks for sockets
	backend   string // proxy mode: the private address the process listens on

	exited  chan struct{} // closed once reaped; exit says how
	exit    proc.Exit
	ipcDone chan struct{} // closed when the IPC channel reaches EOF (nil without a channel)
	hurry   chan struct{} // closed to cut a drain short: the instance is being stopped
	once    sync.Once

	app      *App // whose sockets the run counts in (released once, with the run)
	released sync.Once
}

// ended returns how the run ended, once it has.
func (r *run) ended() (proc.Exit, bool) {
	select {
	case <-r.exited:
		return r.exit, true
	default:
		return proc.Exit{}, false
	}
}

func (r *run) hurryUp() { r.once.Do(func() { close(r.hurry) }) }

// release drops what the run held besides its log readers, once its process is gone, and
// lets the app's sockets close if nothing else uses them.
func (r *run) release() {
	r.released.Do(func() {
		if r.handles != nil {
			r.handles.CloseStdin()
		}
		if r.channel != nil {
			r.channel.Close()
		}
		r.app.socks.Release()
	})
}

type timerKind int

const (
	timerReady   timerKind = iota // the current run must be ready by now
	timerRestart                  // the restart delay is over
	timerReload                   // the replacement must be ready by now
)

// readyRule is how an instance shows it serves.
type readyRule int

const (
	readyAtOnce    readyRule = iota // fork mode: online once spawned
	readyOnMessage                  // --wait-ready: when the app says ready
	readyOnListen                   // Node cluster mode: when it listens, or says ready
	readyOnUptime                   // inherited sockets: when it says ready, or has lived min_uptime
)

// Instance is one process slot of an app, owned by one goroutine (loop). Only that goroutine
// touches the fields below the line; everyone else talks to it through cmds or reads info.
type Instance struct {
	id     int
	index  int // the slot: NODE_APP_INSTANCE, and which socket of each port it serves
	app    *App
	sup    *Supervisor
	cmds   chan command
	events chan event
	info   atomic.Pointer[Info]
	done   chan struct{}

	// --- owned by loop ---
	log         *slog.Logger
	spec        *config.AppSpec
	status      Status
	hist        History
	cur         *run
	next        *run // the replacement while a reload waits for it to be ready
	reloadReply chan error
	retired     []*run // old runs draining after a reload
	retiring    sync.WaitGroup
	created     time.Time
	exitCode    *int
	files       []*logs.File // out, err, combined (may be nil entries)
	paths       [3]string
	timer       *time.Timer
	timerFor    timerKind
	waiters     []chan error // start/restart replies waiting for online
}

func newInstance(sup *Supervisor, app *App, id, index int, spec *config.AppSpec, hist History, status Status) *Instance {
	in := &Instance{
		id: id, index: index, app: app, sup: sup, spec: spec, status: status, hist: hist,
		cmds:   make(chan command, 16),
		events: make(chan event, 64),
		done:   make(chan struct{}),
		log:    sup.log.With("app", spec.Name, "instance", id),
	}
	in.created = time.Now()
	in.publish()
	go in.loop()
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
		return fmt.Errorf("%w: app %q (id %d) was removed meanwhile (deleted, or scaled down)", ErrNotFound, in.Info().Name, in.id)
	}
	select {
	case err := <-c.reply:
		return err
	case <-in.done:
		return fmt.Errorf("%w: app %q (id %d) was removed meanwhile (deleted, or scaled down)", ErrNotFound, in.Info().Name, in.id)
	}
}

// post hands an event to the instance's goroutine; after a delete nobody listens any more.
func (in *Instance) post(ev event) {
	select {
	case in.events <- ev:
	case <-in.done:
	}
}

func (in *Instance) publish() {
	i := &Info{
		ID: in.id, Index: in.index, Name: in.spec.Name, Spec: in.spec, Status: in.status,
		History: in.hist, Created: in.created, ExitCode: in.exitCode,
		OutLog: in.paths[0], ErrLog: in.paths[1], LogFile: in.paths[2],
		Listening: in.app.socks.Ports(),
	}
	if r := in.cur; r != nil {
		i.Pid, i.StartTick, i.Started, i.channel = r.pid, r.startTick, r.startedAt, r.channel
	}
	for _, r := range append([]*run{in.next}, in.retired...) {
		if r != nil {
			if _, gone := r.ended(); !gone {
				i.Others = append(i.Others, state.Proc{Pid: r.pid, StartTick: r.startTick})
			}
		}
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

func (in *Instance) loop() {
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
		case ev := <-in.events:
			in.safely(func() { in.onEvent(ev) })
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
			in.log.Error("panic in instance", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
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
			err = in.restart(c.spec, c.reply)
			if err == nil {
				c.reply = nil
			}
		case cmdReload:
			err = in.reload(c.reply)
			if err == nil {
				c.reply = nil // answered once the old process is gone
			}
		case cmdStop:
			err = in.stop("stop")
		case cmdDelete:
			if c.drain {
				in.retireForScale()
			}
			err = in.stop("delete")
			in.closeFiles()
			exit = true
		case cmdSignal:
			if in.cur == nil {
				err = fmt.Errorf("%w: app %q (id %d) is not running", ErrNotRunning, in.spec.Name, in.id)
			} else if e := unix.Kill(in.cur.pid, c.sig); e != nil {
				err = fmt.Errorf("send %s to pid %d: %w", unix.SignalName(c.sig), in.cur.pid, e)
			}
		case cmdRespec:
			// The log files stay: the running process writes to them, and `logs` must read
			// what it writes. The next process opens the files the new spec names.
			in.spec = c.spec
			in.publish()
		case cmdStdin:
			err = in.writeStdin(c.line)
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

func (in *Instance) writeStdin(line []byte) error {
	if in.cur == nil || in.cur.handles == nil || in.cur.handles.StdinW < 0 {
		return fmt.Errorf("%w: app %q (id %d) is not running", ErrNotRunning, in.spec.Name, in.id)
	}
	n, err := unix.Write(in.cur.handles.StdinW, line)
	switch {
	case err == unix.EAGAIN || err == nil && n < len(line):
		return fmt.Errorf("app %q (id %d) does not read its stdin: the pipe is full", in.spec.Name, in.id)
	case err != nil:
		return fmt.Errorf("write to the stdin of app %q (id %d): %w", in.spec.Name, in.id, err)
	}
	return nil
}

// ErrNotRunning is returned for an action that needs a running process.
var ErrNotRunning = errors.New("not running")

// sharesPorts reports whether the instance's ports outlive its processes (cluster mode): then a
// reload starts the replacement beside the old process instead of after it.
func (in *Instance) sharesPorts() bool {
	return in.spec.NodeCluster() || in.spec.ListenFds() || in.spec.ProxyMode()
}

// serving tells the app's sockets (and its proxy) whether the instance serves now, so that new
// connections go only to instances that do.
func (in *Instance) serving(r *run, live bool) {
	in.app.socks.SetLive(in.index, live)
	if p := in.app.proxyNow(); p != nil && r != nil && r.backend != "" {
		if live {
			p.Set(in.index, r.backend)
		} else {
			p.Remove(in.index, r.backend)
		}
	}
}

func (in *Instance) rule() readyRule {
	switch {
	case in.spec.WaitReady:
		return readyOnMessage
	case in.spec.NodeCluster(), in.spec.ProxyMode():
		return readyOnListen
	case in.spec.ListenFds():
		return readyOnUptime
	}
	return readyAtOnce
}

func (in *Instance) readyTimeout() time.Duration {
	if in.rule() == readyOnUptime {
		return in.spec.MinUptime
	}
	return in.spec.ListenTimeout
}

func (in *Instance) restart(spec *config.AppSpec, reply chan error) error {
	_ = in.stop("restart")
	in.hist.Restarts++
	in.hist.Unstable = 0
	return in.start(spec, reply)
}

// start spawns the process. reply, if not nil, is answered once the instance is online (or
// failed); start answers nothing itself when it returns nil.
func (in *Instance) start(spec *config.AppSpec, reply chan error) error {
	if spec != nil && spec != in.spec {
		in.spec = spec
		in.closeFiles()
		in.log = in.sup.log.With("app", spec.Name, "instance", in.id)
	}
	if in.cur != nil {
		answer(reply, nil)
		return nil
	}
	if in.next != nil {
		// A reload whose old process died is waiting for its replacement: that one is the start.
		if reply != nil {
			in.waiters = append(in.waiters, reply)
		}
		return nil
	}
	in.cancelTimer()
	if in.sup.isClosing() {
		// Nothing may be spawned once the daemon is stopping: it would outlive it.
		in.setStatus(Stopped)
		return ErrClosing
	}
	if in.status == Errored {
		in.hist.Unstable = 0 // a fresh chance; jlist showed the count that made it give up
	}
	in.setStatus(Launching)
	r, err := in.spawn()
	if err != nil {
		in.log.Error("start failed", "err", err)
		in.setStatus(Errored)
		in.sup.releaseIfIdle(in.app)
		return err
	}
	in.cur = r
	in.publish()
	if reply != nil {
		in.waiters = append(in.waiters, reply)
	}
	if in.rule() == readyAtOnce {
		in.becomeOnline()
	} else {
		in.armTimer(in.readyTimeout(), timerReady)
	}
	return nil
}

func (in *Instance) becomeOnline() {
	in.cancelTimer()
	in.setStatus(Online)
	in.serving(in.cur, true)
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

func (in *Instance) onEvent(ev event) {
	switch ev.kind {
	case evExit:
		in.onExit(ev.r)
	case evReady, evListening:
		if in.rule() == readyOnMessage && ev.kind != evReady {
			return // --wait-ready: listening is not enough
		}
		switch {
		case ev.r == in.cur && in.status == Launching:
			in.log.Info("ready", "pid", ev.r.pid)
			in.becomeOnline()
		case ev.r == in.next:
			in.log.Info("replacement ready", "pid", ev.r.pid)
			in.promote()
		}
	case evListenFailed:
		in.onListenFailed(ev.r, ev.err)
	}
}

// onListenFailed handles an app that asked for a port tend could not give it (in use by another
// program or app). Restarting would fail the same way, so the instance ends errored and its
// start reports why.
func (in *Instance) onListenFailed(r *run, err error) {
	if r == in.next {
		in.abortReload(err, true)
		return
	}
	if r != in.cur {
		return
	}
	if in.status != Launching {
		// A server the app opens later: it got the error from listen() and may handle it.
		r.log.Warn("listen failed", "err", err)
		return
	}
	in.log.Error("listen failed", "pid", r.pid, "err", err)
	in.setStatus(Stopping)
	_ = in.terminate(r, "listen failed")
	// Answered once nothing is left running, so that the caller sees the app errored.
	defer in.failWaiters(fmt.Errorf("app %q: %w", in.spec.Name, err))
	in.cur = nil
	if e, ok := r.ended(); ok {
		in.exitCode = &e.Code
	}
	r.release()
	in.serving(r, false)
	in.setStatus(Errored)
	in.sup.releaseIfIdle(in.app)
}

func (in *Instance) onTimer() {
	switch in.timerFor {
	case timerReady:
		if in.status != Launching || in.cur == nil {
			return
		}
		switch in.rule() {
		case readyOnMessage:
			// PM2 marks it online anyway; tend does too, but the start says it failed.
			err := fmt.Errorf("app %q did not send 'ready' within listen_timeout (%s); it keeps running, marked online", in.spec.Name, in.spec.ListenTimeout)
			in.log.Warn("no ready message within listen_timeout; marking online", "timeout", in.spec.ListenTimeout)
			in.failWaiters(err)
		case readyOnListen:
			in.log.Info("did not listen within listen_timeout; marking online", "timeout", in.spec.ListenTimeout)
		}
		in.becomeOnline()
	case timerRestart:
		if in.status == Waiting {
			if err := in.start(nil, nil); err != nil {
				in.log.Error("restart failed", "err", err)
			}
		}
	case timerReload:
		if in.next == nil {
			return
		}
		if in.rule() == readyOnMessage {
			in.abortReload(fmt.Errorf("the new process did not send 'ready' within listen_timeout (%s)", in.spec.ListenTimeout), true)
			return
		}
		in.log.Info("replacement did not listen within listen_timeout; taking it as ready", "timeout", in.spec.ListenTimeout)
		in.promote()
	}
}

func (in *Instance) armTimer(d time.Duration, purpose timerKind) {
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

// reload replaces the running process without a gap: the replacement starts on the same slot
// sockets, and the old one is drained and stopped once the new one is ready. Apps that share no
// sockets (fork mode) are restarted, as PM2 does.
func (in *Instance) reload(reply chan error) error {
	if !in.sharesPorts() || in.cur == nil || in.status != Online || !sameSockets(in.cur.spec, in.spec) {
		// Nothing to hand over (fork mode, as in PM2), or the new spec listens differently.
		return in.restart(nil, reply)
	}
	if in.next != nil {
		return fmt.Errorf("app %q instance %d is already being reloaded; wait for that reload to finish", in.spec.Name, in.index)
	}
	if in.sup.isClosing() {
		return ErrClosing
	}
	r, err := in.spawn()
	if err != nil {
		return fmt.Errorf("reload of app %q instance %d failed: %w; the old process keeps serving", in.spec.Name, in.index, err)
	}
	in.next, in.reloadReply = r, reply
	in.publish() // the registry must know of it, should the daemon die meanwhile
	in.armTimer(in.readyTimeout(), timerReload)
	return nil
}

// sameSockets reports whether a process started from a can hand its sockets to one started
// from b.
func sameSockets(a, b *config.AppSpec) bool {
	return a.ExecMode == b.ExecMode && a.Proxy == b.Proxy && a.NodeIPC == b.NodeIPC && slices.Equal(a.Ports, b.Ports)
}

// promote makes the replacement the instance's process and retires the old one.
func (in *Instance) promote() {
	nr, old := in.next, in.cur
	in.cancelTimer()
	in.next, in.cur = nil, nr
	in.hist.Restarts++ // PM2 counts a reload as a restart
	in.setStatus(Online)
	in.publish()
	in.serving(nr, true)
	for _, w := range in.waiters {
		answer(w, nil)
	}
	in.waiters = nil
	in.retired = slices.DeleteFunc(in.retired, func(r *run) bool { _, gone := r.ended(); return gone })
	reply := in.reloadReply
	in.reloadReply = nil
	if old == nil { // it died meanwhile
		answer(reply, nil)
		return
	}
	in.retired = append(in.retired, old)
	in.retiring.Add(1)
	go func() {
		defer in.retiring.Done()
		defer func() {
			if p := recover(); p != nil {
				old.log.Error("panic while retiring a process", "panic", fmt.Sprint(p))
			}
		}()
		err := in.drain(old)
		old.release()
		// If the new process ended meanwhile, this one held the sockets last.
		in.sup.releaseIfIdle(in.app)
		answer(reply, err)
	}()
}

// abortReload gives up on the replacement: it is stopped, and the old process keeps serving.
func (in *Instance) abortReload(why error, restart bool) {
	nr := in.next
	in.next = nil
	if in.timerFor == timerReload {
		in.cancelTimer()
	}
	err := fmt.Errorf("reload of app %q instance %d failed: %v; the old process keeps serving", in.spec.Name, in.index, why)
	in.log.Error("reload failed", "err", why)
	select {
	case <-nr.exited:
	default:
		_ = in.terminate(nr, "reload failed")
	}
	nr.release()
	if nr.spec.Treekill {
		go cleanupGroup(nr.pid, nr.spec)
	}
	if in.cur == nil { // the old one is gone too
		err = fmt.Errorf("reload of app %q instance %d failed: %v", in.spec.Name, in.index, why)
		in.serving(nil, false)
		if restart {
			if e := in.start(nil, nil); e != nil {
				in.log.Error("restart failed", "err", e)
			}
		} else {
			in.failWaiters(err)
		}
	}
	answer(in.reloadReply, err)
	in.reloadReply = nil
}

// drain lets a replaced process finish: a Node worker is told to stop accepting and to close its
// keep-alive connections, and has drain_timeout to end its requests and close its IPC channel
// (Node's cluster 'disconnect' does exactly that); then it gets kill_signal as in a stop.
func (in *Instance) drain(r *run) error {
	if r.channel != nil && r.spec.NodeCluster() {
		_ = r.channel.Drain()
		if r.shim {
			_ = r.channel.Send(map[string]string{"cmd": "NODE_TEND_DISCONNECT"})
		} else {
			_ = r.channel.Disconnect()
		}
		t := time.NewTimer(r.spec.Drain())
		select {
		case <-r.ipcDone:
		case <-r.exited:
		case <-r.hurry:
		case <-t.C:
			r.log.Warn("drain_timeout passed with requests still open", "pid", r.pid, "drain_timeout", r.spec.Drain())
		}
		t.Stop()
	}
	if r.backend != "" {
		// The proxy sends it nothing new; let the connections it relays end first. A Node app
		// with the preload closes its keep-alive connections between requests.
		if r.channel != nil {
			_ = r.channel.Drain()
		}
		if p := in.app.proxyNow(); p != nil {
			t := time.NewTimer(r.spec.Drain())
			tick := time.NewTicker(20 * time.Millisecond)
		wait:
			for p.Active(r.backend) > 0 {
				select {
				case <-r.exited:
					break wait
				case <-r.hurry:
					break wait
				case <-t.C:
					r.log.Warn("drain_timeout passed with connections still open", "drain_timeout", r.spec.Drain())
					break wait
				case <-tick.C:
				}
			}
			t.Stop()
			tick.Stop()
		}
	}
	return in.terminate(r, "reload")
}

func (in *Instance) openFiles() error {
	out, errp, comb := in.sup.logPaths(in.spec, in.id)
	if in.files != nil && in.paths != [3]string{out, errp, comb} {
		// The spec names other files now; the running process's readers keep the old ones.
		in.closeFiles()
	}
	if in.files != nil {
		return nil
	}
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

func (in *Instance) env(r *run, h *proc.Handles, listen int) []string {
	env := make(map[string]string, len(in.spec.Env)+10)
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
	if h.IPCChildFd >= 0 {
		if in.spec.NodeIPC {
			env["NODE_CHANNEL_FD"] = strconv.Itoa(h.IPCChildFd)
			env["NODE_CHANNEL_SERIALIZATION_MODE"] = "json"
		} else {
			env["TEND_IPC_FD"] = strconv.Itoa(h.IPCChildFd)
		}
	}
	if in.spec.NodeCluster() {
		if r.shim {
			env["TEND_NODE_SHIM"] = "1"
		} else {
			// Makes Node's own cluster code ask tend for its listening sockets (research §2.1).
			env["NODE_UNIQUE_ID"] = strconv.FormatInt(in.sup.workerID.Add(1), 10)
		}
	}
	if r.backend != "" {
		_, port, _ := strings.Cut(r.backend, ":")
		env["PORT"] = port
	}
	if in.sup.notify != "" && !in.spec.IsNodeLike() && (in.sharesPorts() || in.spec.WaitReady) {
		// systemd's readiness protocol: "READY=1" there says the instance serves.
		env["NOTIFY_SOCKET"] = in.sup.notify
	}
	if listen > 0 {
		// systemd's socket activation protocol; LISTEN_PID is set by the exec helper, which
		// knows the pid.
		env["LISTEN_FDS"] = strconv.Itoa(listen)
		names := make([]string, 0, listen)
		for _, p := range in.spec.Ports {
			names = append(names, strconv.Itoa(p.Port))
		}
		env["LISTEN_FDNAMES"] = strings.Join(names, ":")
	}
	return config.EnvList(env)
}

// argv is the command of a run: the spec's, with tend's preload for Node in cluster mode, and
// through the exec helper when the process inherits sockets (LISTEN_PID must be its own pid).
func (in *Instance) argv(r *run) []string {
	argv := in.spec.Command()
	// TEND_NODE_PRELOAD=0 leaves the preload out (an app it would disturb); reloads then close
	// busy keep-alive connections only when drain_timeout passes. A Node that needs the shim
	// gets it anyway: without it, the app would bind the port itself.
	wanted := (in.spec.NodeCluster() || in.spec.ProxyMode()) && in.spec.Env["TEND_NODE_PRELOAD"] != "0" || r.shim
	if wanted && in.spec.InterpreterLabel == "node" && in.sup.preload != "" && !in.spec.ScriptIsCommand {
		n := 1 + len(in.spec.InterpreterArgs)
		argv = slices.Concat(argv[:n], []string{"--require", in.sup.preload}, argv[n:])
	}
	if in.spec.ListenFds() {
		argv = append([]string{in.sup.selfExe, proc.ExecHelperArg}, argv...)
	}
	return argv
}

func (in *Instance) spawn() (r *run, err error) {
	if err := in.openFiles(); err != nil {
		return nil, err
	}
	in.app.socks.Acquire()
	defer func() {
		if err != nil {
			in.app.socks.Release()
		}
	}()
	var listen []int
	if in.spec.ListenFds() {
		keys := make([]sockets.Key, len(in.spec.Ports))
		for i, p := range in.spec.Ports {
			keys[i] = sockets.Key{Host: p.Host, Port: p.Port}
		}
		if listen, err = in.app.socks.Open(keys, in.index); err != nil {
			return nil, err
		}
	}
	r = &run{spec: in.spec, log: in.log, app: in.app, exited: make(chan struct{}), hurry: make(chan struct{})}
	if in.spec.ProxyMode() {
		if err := in.app.ensureProxy(in.spec, in.sup.log); err != nil {
			return nil, err
		}
		port, err := privatePort()
		if err != nil {
			return nil, err
		}
		r.backend = "127.0.0.1:" + strconv.Itoa(port)
	}
	nlisten := len(listen)
	h, err := proc.NewHandles(in.spec.NodeIPC || nlisten > 0, listen)
	if err != nil {
		return nil, err
	}
	r.shim = in.spec.NodeCluster() && in.sup.needsShim(in.spec)
	argv := in.argv(r)
	pid, exitCh, err := in.sup.reaper.Start(proc.Cmd{
		Argv:  argv,
		Env:   in.env(r, h, nlisten),
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
		return nil, fmt.Errorf("start %q: %w", in.spec.Name, err)
	}
	r.pid, r.handles = pid, h
	r.log = in.log.With("pid", pid)
	r.started = time.Now()
	r.startedAt = r.started
	if st, err := proc.ReadStat(pid); err == nil {
		r.startTick = st.StartTicks
	}
	who := &running{in: in, r: r}
	in.sup.running.Store(pid, who)
	go func() {
		r.exit = <-exitCh
		in.sup.running.CompareAndDelete(pid, who)
		close(r.exited)
		in.post(event{r: r, kind: evExit})
	}()
	if r.backend != "" {
		go in.probe(r)
	}
	in.log.Info("started", "pid", pid, "cmd", strings.Join(argv, " "))

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
			r.channel = ch
			r.ipcDone = make(chan struct{})
			go func() {
				defer close(r.ipcDone)
				defer func() {
					if p := recover(); p != nil {
						r.log.Error("panic in ipc reader", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					}
				}()
				_ = ch.Serve(func(m ipc.Message) { in.onMessage(r, m) })
			}()
		}
	}
	return r, nil
}

// probe tells the instance's goroutine when a proxied process accepts connections on its
// private port, which is how such an app says it listens.
func (in *Instance) probe(r *run) {
	defer func() { recover() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	limit := time.NewTimer(r.spec.ListenTimeout + time.Minute)
	defer limit.Stop()
	for {
		select {
		case <-r.exited:
			return
		case <-limit.C:
			return
		case <-tick.C:
		}
		if c, err := net.DialTimeout("tcp", r.backend, time.Second); err == nil {
			c.Close()
			in.post(event{r: r, kind: evListening})
			return
		}
	}
}

// privatePort picks a free loopback port for a proxied instance. Another program could take it
// before the instance binds it; the instance then fails to listen and is restarted.
func privatePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a private port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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

func (in *Instance) onExit(r *run) {
	if r == in.next {
		in.abortReload(fmt.Errorf("the new process ended (%s) before it was ready", r.exit), true)
		return
	}
	if r != in.cur {
		return // stopped on purpose, or retired after a reload
	}
	e := r.exit
	uptime := time.Since(r.started)
	code := e.Code
	in.exitCode = &code
	in.log.Info("exited", "pid", e.Pid, "exit_code", e.Code, "signal", sigName(e.Signal), "uptime", uptime.Round(time.Millisecond))
	in.cur = nil
	// Its share of new connections goes to the other slots; the ones queued on its socket wait
	// for the replacement.
	in.serving(r, false)
	r.release()
	if in.spec.Treekill {
		// Children the app left behind would hold its port and outlive it (PM2 pain 10).
		go cleanupGroup(r.pid, in.spec)
	}
	if in.next != nil {
		in.publish() // the replacement takes over when it is ready
		return
	}
	if in.status == Launching {
		in.failWaiters(fmt.Errorf("app %q exited before it was ready (%s)", in.spec.Name, e))
	}
	d, h := Decide(in.spec, in.hist, uptime, code)
	in.hist = h
	switch d.Action {
	case Stop:
		in.setStatus(Stopped)
		in.sup.releaseIfIdle(in.app)
	case Give:
		in.log.Error("too many unstable restarts; not restarting", "max_restarts", in.spec.MaxRestarts, "min_uptime", in.spec.MinUptime)
		in.setStatus(Errored)
		in.sup.releaseIfIdle(in.app)
	case Restart:
		in.setStatus(Waiting)
		if d.Delay <= 0 {
			if err := in.start(nil, nil); err != nil {
				in.log.Error("restart failed", "err", err)
			}
			return
		}
		in.armTimer(d.Delay, timerRestart)
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

// retireForScale takes the instance out of its app's service before a scale down deletes it:
// its slots get no new connections, it accepts what is already queued on them, and then it
// drains as a reloaded process does. Closing the slot sockets after that resets nothing.
func (in *Instance) retireForScale() {
	r := in.cur
	if r == nil || in.next != nil || !in.sharesPorts() {
		return
	}
	in.serving(r, false)
	time.Sleep(queueSettle)
	in.setStatus(Stopping)
	_ = in.drain(r)
	if e, ok := r.ended(); ok {
		in.exitCode = &e.Code
	}
	r.release()
	in.cur = nil
	in.publish()
}

// queueSettle is how long an excluded slot's process keeps accepting before it is told to stop:
// connections steered to it just before the exclusion are still in its queue.
const queueSettle = 100 * time.Millisecond

// stop ends the instance's processes, if any: the replacement of a reload, old processes still
// draining, and the current one. It returns once they are reaped and their trees gone.
func (in *Instance) stop(reason string) error {
	in.cancelTimer()
	if in.next != nil {
		in.abortReload(fmt.Errorf("interrupted by %s", reason), false)
	}
	for _, r := range in.retired {
		r.hurryUp()
	}
	var stopErr error
	if r := in.cur; r != nil {
		in.failWaiters(fmt.Errorf("app %q was stopped before it was ready", in.spec.Name))
		in.setStatus(Stopping)
		in.serving(r, false)
		stopErr = in.terminate(r, reason)
		if e, ok := r.ended(); ok {
			in.exitCode = &e.Code
		}
		r.release()
		in.cur = nil
	}
	in.retiring.Wait()
	in.retired = nil
	if in.status != Stopped {
		in.setStatus(Stopped)
	}
	in.sup.releaseIfIdle(in.app)
	return stopErr
}

// terminate ends one run: kill_signal to its whole tree, then SIGKILL after kill_timeout. It
// returns once the process is reaped and its tree is gone (or SIGKILLed). It reads only the run,
// so a retiring run can be terminated off the instance's goroutine.
func (in *Instance) terminate(r *run, reason string) error {
	spec, pid := r.spec, r.pid
	select {
	case <-r.exited:
		if spec.Treekill {
			cleanupGroup(pid, spec)
		}
		return nil
	default:
	}
	sig, err := config.ParseSignal(spec.KillSignal)
	if err != nil {
		sig = unix.SIGINT
	}
	var tree []int
	if spec.Treekill {
		tree = proc.Tree(pid, pid)
		proc.SignalTree(pid, tree, sig)
	} else {
		_ = unix.Kill(pid, sig)
	}
	r.log.Info("stopping", "signal", unix.SignalName(sig), "reason", reason)
	t0 := time.Now()
	deadline := time.NewTimer(spec.KillTimeout)
	defer deadline.Stop()
	exited := false
	select {
	case <-r.exited:
		exited = true
	case <-deadline.C:
	}
	var stopErr error
	if spec.Treekill {
		// The leader is gone (or late); the rest of its tree gets what is left of kill_timeout.
		left := max(spec.KillTimeout-time.Since(t0), 0)
		if !exited || !proc.WaitGone(pid, tree, left) {
			if !exited { // the app may have forked while shutting down
				tree = append(tree, proc.Tree(pid, pid)...)
			}
			r.log.Warn("kill_timeout passed; sending SIGKILL", "kill_timeout", spec.KillTimeout)
			proc.SignalTree(pid, tree, unix.SIGKILL)
		}
	} else if !exited {
		r.log.Warn("kill_timeout passed; sending SIGKILL", "kill_timeout", spec.KillTimeout)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if !exited {
		select {
		case <-r.exited:
		case <-time.After(5 * time.Second):
			stopErr = fmt.Errorf("app %q pid %d did not die after SIGKILL", spec.Name, pid)
		}
	}
	if e, ok := r.ended(); ok {
		r.log.Info("stopped", "exit_code", e.Code, "signal", sigName(e.Signal))
	}
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
