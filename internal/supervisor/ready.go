package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/tend-sh/tend/internal/sockets"
)

type timerKind int

const (
	timerReady   timerKind = iota // the current run must be ready by now
	timerRestart                  // the restart delay is over
	timerReload                   // the replacement must be ready by now
	timerRetry                    // an errored instance's cooldown is over
)

// readyRule is how an instance shows it serves.
type readyRule int

const (
	readyAtOnce    readyRule = iota // fork mode: online once spawned
	readyOnMessage                  // --wait-ready: when the app says ready
	readyOnListen                   // Node cluster mode: when it listens, or says ready
	readyOnUptime                   // inherited sockets: when it says ready, or has lived min_uptime
)

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

func (in *Instance) becomeOnline() {
	in.cancelTimer()
	in.transition(trReady)
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
		// A server the app opens later: it got the error from listen() and may handle it. An
		// app that asks in a loop past the cap is said once a run, not once an ask.
		if errors.Is(err, sockets.ErrTooManyPorts) {
			if r.portCapSaid {
				return
			}
			r.portCapSaid = true
		}
		r.log.Warn("listen failed", "err", err)
		return
	}
	in.log.Error("listen failed", "pid", r.pid, "err", err)
	in.transition(trStop)
	_ = in.terminate(r, "listen failed")
	// Answered once nothing is left running, so that the caller sees the app errored.
	defer in.failWaiters(fmt.Errorf("app %q: %w", in.spec.Name, err))
	in.cur = nil
	if e, ok := r.ended(); ok {
		in.exitCode = &e.Code
	}
	r.release()
	in.serving(r, false)
	in.transition(trListenFailed)
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
			in.hist = AutoRestarted(in.hist)
			if err := in.start(nil, nil); err != nil {
				in.log.Error("restart failed", "err", err)
			}
		}
	case timerRetry:
		if in.status == Errored {
			in.log.Info("errored; trying again after its cooldown")
			in.hist = Retried(in.hist)
			if err := in.start(nil, nil); err != nil {
				in.log.Error("retry failed", "err", err)
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
