package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/events"
)

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
	in.emit(events.Event{Kind: "reload", Reason: "begin", Pid: r.pid, Message: "a replacement process starts"})
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
	in.hist = Reloaded(in.hist)
	in.transition(trPromote)
	in.emit(events.Event{Kind: "reload", Reason: "done", Pid: nr.pid, Message: "the replacement serves; the old process drains"})
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
		err := in.drain(old, "reload")
		old.release()
		// If the new process ended meanwhile, this one held the sockets last.
		in.sup.releaseIfIdle(in.app)
		answer(reply, err)
	}()
}

// errInterrupted is a reload's end when a stop or delete of the instance came first.
var errInterrupted = errors.New("interrupted")

// abortReload gives up on the replacement: it is stopped, and the old process keeps serving.
func (in *Instance) abortReload(why error, restart bool) {
	nr := in.next
	in.next = nil
	if in.timerFor == timerReload {
		in.cancelTimer()
	}
	err := fmt.Errorf("reload of app %q instance %d failed: %w; the old process keeps serving", in.spec.Name, in.index, why)
	if errors.Is(why, errInterrupted) {
		// A stop or delete asked for it: nothing failed.
		in.log.Info("reload interrupted", "why", why)
		in.emit(events.Event{Kind: "reload", Reason: "interrupted", Pid: nr.pid, Message: why.Error()})
	} else {
		in.log.Error("reload failed", "err", why)
		in.emit(events.Event{Kind: "reload", Reason: "failed", Pid: nr.pid, Message: why.Error()})
	}
	select {
	case <-nr.exited:
	default:
		_ = in.terminate(nr, "reload failed")
	}
	nr.release()
	if nr.spec.Treekill {
		go sweep(nr)
	}
	if in.cur == nil { // the old one is gone too
		err = fmt.Errorf("reload of app %q instance %d failed: %w", in.spec.Name, in.index, why)
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
func (in *Instance) drain(r *run, reason string) error {
	if r.channel != nil && (r.spec.NodeCluster() || r.drainable.Load()) {
		if r.spec.NodeCluster() {
			r.channel.Retire(r.shim)
		} else {
			_ = r.channel.Drain() // any language: docs/ipc.md says how to answer it
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
	return in.terminate(r, reason)
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
	in.awaitQueue(r)
	in.transition(trRetire)
	_ = in.drain(r, "scale down")
	if e, ok := r.ended(); ok {
		in.exitCode = &e.Code
	}
	r.release()
	in.cur = nil
	in.publish()
}

// awaitQueue lets an excluded slot's process accept what is queued on its sockets before it is
// told to stop: connections steered to it just before the exclusion would be reset when the
// slot closes. The queue counts as empty once it reads 0 settleReads times in a row
// (connections still in their handshake join it meanwhile); drain_timeout bounds the wait.
func (in *Instance) awaitQueue(r *run) {
	deadline := time.Now().Add(r.spec.Drain())
	for zeros := 0; zeros < settleReads && time.Now().Before(deadline); {
		select {
		case <-r.exited:
			return
		case <-time.After(settleEvery):
		}
		if in.app.socks.Queued(in.index) == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
}

const (
	settleReads = 3
	settleEvery = 10 * time.Millisecond
)
