package supervisor

import (
	"fmt"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/internal/proc"
	"golang.org/x/sys/unix"
)

func (in *Instance) restart(spec *config.AppSpec, reply chan error) error {
	running := in.cur != nil
	_ = in.stop("restart")
	if running {
		// PM2 counts a restart of a running process; a stopped one is merely started.
		in.hist = Restarted(in.hist)
	} else {
		in.hist.Unstable = 0
	}
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
		in.transition(trClosing)
		return ErrClosing
	}
	if in.status == Errored {
		in.hist = Retried(in.hist)
	}
	if reply != nil {
		// Someone asked for this start (automatic ones have no one to answer).
		in.hist = Started(in.hist)
	}
	in.transition(trLaunch)
	r, err := in.spawn()
	if err != nil {
		in.log.Error("start failed", "err", err)
		in.transition(trSpawnFailed)
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

func (in *Instance) onExit(r *run) {
	if r == in.next {
		in.abortReload(fmt.Errorf("the new process ended (%s) before it was ready", r.p.Exit()), true)
		return
	}
	if r != in.cur {
		return // stopped on purpose, or retired after a reload
	}
	if err := r.listenErr.Load(); err != nil && in.status == Launching {
		// It exited on the listen tend could not grant, before that news came: not a crash.
		in.onListenFailed(r, *err)
		return
	}
	e := r.p.Exit()
	uptime := time.Since(r.started)
	code := e.Code
	in.exitCode = &code
	in.log.Info("exited", "pid", e.Pid, "exit_code", e.Code, "signal", sigName(e.Signal), "uptime", uptime.Round(time.Millisecond))
	in.hist = withExit(in.hist, Exit{At: time.Now(), Code: e.Code, Signal: sigName(e.Signal), Uptime: uptime, Why: "exit"})
	ev := events.Event{Kind: "exit", Pid: e.Pid, UptimeMs: uptime.Milliseconds(), Signal: sigName(e.Signal)}
	if e.Signal == 0 {
		ev.ExitCode = new(e.Code)
	}
	in.emit(ev)
	in.cur = nil
	// Its share of new connections goes to the other slots; the ones queued on its socket wait
	// for the replacement.
	in.serving(r, false)
	r.release()
	if in.spec.Treekill {
		// Children the app left behind would hold its port and outlive it (PM2 pain 10).
		go sweep(r)
	}
	if in.next != nil {
		in.publish() // the replacement takes over when it is ready
		return
	}
	if in.status == Launching {
		in.failWaiters(fmt.Errorf("app %q exited before it was ready (%s)", in.spec.Name, e))
	}
	d, h := Decide(in.spec, in.hist, uptime, code, time.Now())
	in.hist = h
	switch d.Action {
	case Stop:
		in.transition(trExitStop)
		in.sup.releaseIfIdle(in.app)
	case Give:
		// Said before the transition publishes "errored": whoever sees that status finds why
		// in tend.log already.
		if d.Delay > 0 {
			in.log.Error("too many unstable restarts; errored, tried again later", "max_restarts", in.spec.MaxRestarts, "min_uptime", in.spec.MinUptime, "retry_in", d.Delay)
		} else {
			in.log.Error("too many unstable restarts; not restarting", "max_restarts", in.spec.MaxRestarts, "min_uptime", in.spec.MinUptime)
		}
		in.transition(trGiveUp)
		if d.Delay > 0 {
			in.armTimer(d.Delay, timerRetry)
			in.retryAt = time.Now().Add(d.Delay)
			in.publish()
		}
		in.sup.releaseIfIdle(in.app)
	case Restart:
		if d.Limited && d.Delay == limitFirst {
			burst, interval := in.spec.StartLimit()
			in.log.Warn("start limit: more automatic starts than the burst within the interval; backing off", "burst", burst, "interval", interval, "next_in", d.Delay)
		}
		in.transition(trExitRestart)
		if d.Delay <= 0 {
			in.hist = AutoRestarted(in.hist)
			if err := in.start(nil, nil); err != nil {
				in.log.Error("restart failed", "err", err)
			}
			return
		}
		in.armTimer(d.Delay, timerRestart)
	}
}

// killSignal is the spec's kill_signal (SIGINT when it does not parse: PM2's default).
func killSignal(spec *config.AppSpec) unix.Signal {
	sig, err := config.ParseSignal(spec.KillSignal)
	if err != nil {
		return unix.SIGINT
	}
	return sig
}

// sweep ends what a run's process left in its group once it is gone (with treekill): children
// the app left behind would hold its port and outlive it (PM2 pain 10).
func sweep(r *run) {
	defer func() { recover() }()
	r.p.Sweep(killSignal(r.spec), r.spec.KillTimeout)
	stopEscapees(r, killSignal(r.spec))
}

// stopEscapees ends the run's processes that left its tree (setsid after a double fork), found
// by the run's mark: sig, then SIGKILL after kill_timeout.
func stopEscapees(r *run, sig unix.Signal) {
	pids := proc.Marked(r.mark)
	if len(pids) == 0 {
		return
	}
	if sig == 0 {
		sig = unix.SIGTERM
	}
	r.log.Info("stopping processes that left the app's tree", "pids", fmt.Sprint(pids))
	proc.SignalTree(0, pids, sig)
	if !proc.WaitGone(0, pids, r.spec.KillTimeout) {
		proc.SignalTree(0, pids, unix.SIGKILL)
	}
}

// stop ends the instance's processes, if any: the replacement of a reload, old processes still
// draining, and the current one. It returns once they are reaped and their trees gone.
func (in *Instance) stop(reason string) error {
	in.cancelTimer()
	if in.next != nil {
		in.abortReload(fmt.Errorf("%w by %s", errInterrupted, reason), false)
	}
	for _, r := range in.retired {
		r.hurryUp()
	}
	var stopErr error
	if r := in.cur; r != nil {
		in.failWaiters(fmt.Errorf("app %q was stopped before it was ready", in.spec.Name))
		in.transition(trStop)
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
	in.transition(trStopped)
	in.sup.releaseIfIdle(in.app)
	return stopErr
}

// terminate ends one run: kill_signal to its whole tree (to the process alone without
// treekill), then SIGKILL after kill_timeout (the escalation is proc's). It returns once the
// process is reaped and its tree is gone (or SIGKILLed). It reads only the run, so a retiring
// run can be terminated off the instance's goroutine.
func (in *Instance) terminate(r *run, reason string) error {
	spec := r.spec
	sig := killSignal(spec)
	if _, gone := r.ended(); !gone {
		if spec.ShutdownWithMessage && r.channel != nil && r.channel.Send("shutdown") == nil {
			// PM2's shutdown_with_message: the app is asked over IPC and gets no signal; SIGKILL
			// still follows kill_timeout.
			sig = 0
			r.log.Info("stopping", "message", "shutdown", "reason", reason)
		} else {
			r.log.Info("stopping", "signal", unix.SignalName(sig), "reason", reason)
		}
	}
	escalated, err := r.p.Stop(sig, spec.KillTimeout, spec.Treekill)
	if escalated {
		r.log.Warn("kill_timeout passed; sending SIGKILL", "kill_timeout", spec.KillTimeout)
	}
	if err != nil {
		return fmt.Errorf("app %q: %w", spec.Name, err)
	}
	if spec.Treekill {
		stopEscapees(r, sig)
	}
	if e, ok := r.ended(); ok {
		r.log.Info("stopped", "exit_code", e.Code, "signal", sigName(e.Signal))
	}
	return nil
}

// adopt makes a process an earlier daemon started this instance's own again: it is online at
// once (it was serving), and its exit goes through the restart policy like any other.
func (in *Instance) adopt(p proc.Process) error {
	if in.cur != nil {
		return fmt.Errorf("app %q (id %d) already runs a process; pid %d is not adopted", in.spec.Name, in.id, p.Pid())
	}
	// Its pipes must be read, or it blocks once they fill: without its log files it is not
	// adopted, and the start that follows says why.
	if err := in.openFiles(); err != nil {
		return fmt.Errorf("adopt pid %d of app %q: %w", p.Pid(), in.spec.Name, err)
	}
	if err := in.transition(trAdopt); err != nil {
		return err
	}
	in.app.socks.Acquire()
	r := newRun(in, p)
	r.mark = proc.RunMark(p.Pid()) // the earlier daemon's, from the process's environment
	if at := proc.StartedAt(p.StartTick()); !at.IsZero() && at.Before(r.startedAt) {
		r.started = r.started.Add(-r.startedAt.Sub(at)) // keeps the monotonic reading
		r.startedAt = at
	}
	if in.spec.ProxyMode() {
		// The proxy lived in the dead daemon; its socket, kept, waits for this one's. The
		// process listens where its environment said.
		if port := proc.Environ(r.pid)["PORT"]; port != "" {
			r.backend = "127.0.0.1:" + port
		}
		if err := in.app.ensureProxy(in.spec, in.sup.log); err != nil {
			in.log.Error("adopted without its proxy", "pid", r.pid, "err", err)
		}
	}
	in.cur = r
	in.startPumps(r, true) // what the app wrote while no daemon read waits in the pipes, in order
	in.watchExit(r)
	if p.Holder().Fd(proc.KindIPC) >= 0 {
		in.openChannel(r, true)
	}
	in.log.Info("adopted", "pid", r.pid)
	in.writePidFile(r)
	in.serving(r, true)
	in.publish()
	return nil
}
