package supervisor

import (
	"fmt"
	"hash/fnv"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/sockets"
	"golang.org/x/sys/unix"
)

func (in *Instance) openFiles() error {
	out, errp, comb := in.spec.LogPaths(in.sup.logDir, in.id)
	if in.files != nil && in.paths != [3]string{out, errp, comb} {
		// The spec names other files now; the running process's readers keep the old ones.
		in.closeFiles()
	}
	rot := in.sup.Rotation(in.spec)
	if in.files != nil {
		for _, f := range in.files {
			f.SetRotation(rot) // the spec's keys may be new
		}
		return nil
	}
	in.paths = [3]string{out, errp, comb}
	files := make([]*logs.File, 3)
	for i, p := range in.paths {
		f, err := in.sup.files.OpenRotating(p, rot)
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

func (in *Instance) env(shim bool, backend string, listen int, as *runAs) []string {
	env := make(map[string]string, len(in.spec.Env)+10)
	for k, v := range in.spec.Env {
		env[k] = v
	}
	// PM2's per-process variables; apps and scripts read them.
	for k, v := range in.spec.InstanceEnv(in.id, in.index) {
		env[k] = v
	}
	env["TEND_HOME"] = in.sup.home
	if in.spec.NodeIPC || listen > 0 {
		fd := proc.IPCChildFd(listen)
		if in.spec.NodeIPC {
			env["NODE_CHANNEL_FD"] = strconv.Itoa(fd)
			env["NODE_CHANNEL_SERIALIZATION_MODE"] = "json"
		} else {
			env["TEND_IPC_FD"] = strconv.Itoa(fd)
		}
	}
	if in.spec.NodeCluster() {
		if shim {
			env["TEND_NODE_SHIM"] = "1"
		} else {
			// Makes Node's own cluster code ask tend for its listening sockets (research §2.1).
			env["NODE_UNIQUE_ID"] = strconv.FormatInt(in.sup.workerID.Add(1), 10)
		}
	}
	if backend != "" {
		_, port, _ := strings.Cut(backend, ":")
		env["PORT"] = port
	}
	notify := in.sup.notify
	if as != nil {
		// Another user's app: its own HOME and USER, and the daemon's sockets and files where
		// that user can reach them.
		env["HOME"], env["USER"], env["LOGNAME"] = as.home, as.name, as.name
		notify = in.sup.sharedNotify
	}
	if notify != "" && !in.spec.IsNodeLike() && (in.sharesPorts() || in.spec.WaitReady) {
		// systemd's readiness protocol: "READY=1" there says the instance serves.
		env["NOTIFY_SOCKET"] = notify
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
func (in *Instance) argv(shim bool, as *runAs) []string {
	argv := in.spec.Command()
	// TEND_NODE_PRELOAD=0 leaves the preload out (an app it would disturb); reloads then close
	// busy keep-alive connections only when drain_timeout passes. A Node that needs the shim
	// gets it anyway: without it, the app would bind the port itself.
	wanted := (in.spec.NodeCluster() || in.spec.ProxyMode()) && in.spec.Env["TEND_NODE_PRELOAD"] != "0" || shim
	preload := in.sup.preload
	if as != nil {
		preload = in.sup.sharedPreload
	}
	if wanted && in.spec.InterpreterLabel == "node" && preload != "" && !in.spec.ScriptIsCommand {
		n := 1 + len(in.spec.InterpreterArgs)
		argv = slices.Concat(argv[:n], []string{"--require", preload}, argv[n:])
	}
	if in.spec.ListenFds() {
		argv = append([]string{in.sup.selfExe, proc.ExecHelperArg}, argv...)
	}
	return argv
}

func (in *Instance) spawn() (r *run, err error) {
	in.custom.clear() // the new process reports its own
	if err := in.openFiles(); err != nil {
		return nil, err
	}
	in.app.socks.Acquire()
	spawned := false
	defer func() {
		if !spawned { // an error, or a panic on the way: the run that counted is not coming
			in.app.socks.Release()
		}
	}()
	var backend string
	if in.spec.ProxyMode() {
		if err := in.app.ensureProxy(in.spec, in.sup.log); err != nil {
			return nil, err
		}
		port, err := privatePort()
		if err != nil {
			return nil, err
		}
		backend = "127.0.0.1:" + strconv.Itoa(port)
	}
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
	shim := in.spec.NodeCluster() && in.sup.needsShim(in.spec)
	as, err := userOf(in.spec)
	if err != nil {
		for _, fd := range listen {
			unix.Close(fd)
		}
		return nil, err
	}
	argv := in.argv(shim, as)
	mark := in.newMark()
	var cred *proc.Cred
	if as != nil {
		cred = &as.cred
	}
	p, err := in.sup.spawner.Start(proc.Cmd{
		Cred:     cred,
		Argv:     argv,
		Env:      append(in.env(shim, backend, len(listen), as), proc.MarkVar+"="+mark),
		Dir:      in.spec.Cwd,
		IPC:      in.spec.NodeIPC || len(listen) > 0,
		Listen:   listen,
		App:      in.spec.Name,
		Instance: in.id,
	})
	if err != nil {
		return nil, fmt.Errorf("start %q: %w", in.spec.Name, err)
	}
	r = newRun(in, p)
	r.shim, r.backend, r.mark = shim, backend, mark
	in.watchExit(r)
	if r.backend != "" {
		go in.probe(r)
	}
	in.log.Info("started", "pid", r.pid, "cmd", strings.Join(config.MaskedArgs(argv, in.sup.secrets()), " "))
	in.writePidFile(r)
	in.startPumps(r, false)
	if r.p.Holder().Fd(proc.KindIPC) >= 0 {
		in.openChannel(r, false)
	}
	spawned = true
	return r, nil
}

// startPumps starts the readers of the run's stdout and stderr into the instance's files.
// resumed pipes were read by a daemon that died: their backlog is drained without loss.
func (in *Instance) startPumps(r *run, resumed bool) {
	date, _ := in.sup.dateFormat(in.spec.LogDateFormat)
	// Each reader holds its own references: a delete or a new spec closes the instance's files
	// while the pipe may still hold output, which the reader writes before it lets go.
	outCfg := logs.StreamConfig{Files: []*logs.File{in.files[0].Retain(), in.files[2].Retain()}, Date: date, Resumed: resumed}
	errCfg := logs.StreamConfig{Files: []*logs.File{in.files[1].Retain(), in.files[2].Retain()}, Date: date, Resumed: resumed}
	if in.sup.echoOut != nil {
		outCfg.Echo, errCfg.Echo = in.sup.echoOut, in.sup.echoErr
	}
	if in.spec.LogType == "json" {
		outCfg.JSON = &logs.JSONFields{Type: "out", ProcessID: in.id, AppName: in.spec.Name}
		errCfg.JSON = &logs.JSONFields{Type: "err", ProcessID: in.id, AppName: in.spec.Name}
	}
	in.watchLogWrites(&outCfg, 0, "stdout")
	in.watchLogWrites(&errCfg, 1, "stderr")
	in.pump(r, proc.KindStdout, outCfg)
	in.pump(r, proc.KindStderr, errCfg)
}

// watchLogWrites makes a stream's failed writes (a full disk) counted and said: once in
// tend.log when they begin, once when they work again with how many lines were lost, and the
// count in describe and jlist. The app runs on meanwhile; its pipe keeps being drained.
func (in *Instance) watchLogWrites(cfg *logs.StreamConfig, stream int, name string) {
	// The counts are read live by jlist and describe; no change is published per drop (that
	// would rewrite the registry, on what may be the full disk).
	h, log, emit := in.logHealth, in.log, in.emitter()
	cfg.Lines = &h.Lines[stream]
	cfg.OnError = func(err error) {
		log.Warn("log writes fail; the lines are dropped and counted until they work again", "stream", name, "err", err)
		emit(events.Event{Kind: "log_drop", Reason: "begin", Stream: name, Message: err.Error()})
	}
	cfg.OnDrop = func(lines int, err error) {
		h.Dropped[stream].Add(int64(lines))
		reason := err.Error()
		h.reason.Store(&reason)
	}
	cfg.OnResume = func(lost int) {
		log.Info("log writes work again", "stream", name, "lines_lost", lost)
		emit(events.Event{Kind: "log_drop", Reason: "end", Stream: name, Dropped: int64(lost)})
	}
}

// openChannel serves the run's IPC channel on a dup of the holder's end. resumed is a channel an
// earlier daemon read from: it may have died in the middle of a message.
func (in *Instance) openChannel(r *run, resumed bool) {
	fd, err := r.p.Holder().Borrow(proc.KindIPC)
	if err != nil {
		in.log.Warn("ipc channel", "err", err)
		return
	}
	ch, err := ipc.Open(fd, resumed)
	if err != nil {
		in.log.Warn("ipc channel", "err", err)
		return
	}
	log := r.log
	dropped := 0
	ch.OnTooLong = func(n int, overMax bool) {
		dropped++
		if overMax {
			log.Warn("ipc channel: a message longer than the daemon keeps was dropped; the channel stays open",
				"bytes", n, "max", ipc.MaxMessage, "dropped_so_far", dropped)
		} else {
			log.Warn("ipc channel: a long message was dropped: the daemon held as much of other apps' long messages as it may; the channel stays open",
				"bytes", n, "dropped_so_far", dropped)
		}
	}
	ch.OnSkip = func(n int) {
		log.Warn("ipc channel: skipped the rest of a message the previous daemon was reading when it died", "bytes", n)
	}
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

// pump runs a log reader for one of the run's pipes, on a dup it borrows from the holder; it
// ends at EOF, when every writer of the pipe (the app and any child it passed its stdout to) is
// gone.
func (in *Instance) pump(r *run, k proc.Kind, cfg logs.StreamConfig) {
	closeFiles := func() {
		for _, f := range cfg.Files {
			f.Close()
		}
	}
	fd, err := r.p.Holder().Borrow(k)
	if err != nil {
		in.log.Warn("log reader", "err", err)
		closeFiles()
		return
	}
	log := in.log
	logs.Go(fd, cfg, func(v any, stack []byte) {
		log.Error("log reader panic; reading on", "panic", fmt.Sprint(v), "stack", string(stack))
	}, func(err error) {
		if err != nil {
			log.Warn("log reader", "err", err)
		}
		closeFiles()
		unix.Close(fd)
	})
}

// watchExit tells the instance's goroutine when the run's process is gone, and lets the
// readiness socket know whose process it is meanwhile.
func (in *Instance) watchExit(r *run) {
	who := &running{in: in, r: r}
	in.sup.running.Store(r.pid, who)
	r.p.OnExit(func() {
		in.sup.running.CompareAndDelete(r.pid, who)
		in.post(event{r: r, kind: evExit})
	})
}

// newMark is a new run's mark: the daemon's home, the instance, and the time, so that no other
// run, here or under another home, has it.
func (in *Instance) newMark() string {
	h := fnv.New64a()
	h.Write([]byte(in.sup.home))
	return fmt.Sprintf("%x.%d.%d", h.Sum64(), in.id, time.Now().UnixNano())
}
