package proc

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// killWait bounds the wait for a process to be reaped after SIGKILL.
const killWait = 5 * time.Second

// stop is the stop escalation of Process.Stop for the process pid leading its own group, whose
// end closes done.
func stop(pid int, done <-chan struct{}, sig unix.Signal, grace time.Duration, tree bool) (escalated bool, err error) {
	select {
	case <-done:
		if tree {
			Sweep(pid, sig, grace)
		}
		return false, nil
	default:
	}
	var members []int
	if tree {
		members = Tree(pid, pid)
		SignalTree(pid, members, sig)
	} else {
		_ = unix.Kill(pid, sig)
	}
	t0 := time.Now()
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	exited := false
	select {
	case <-done:
		exited = true
	case <-deadline.C:
	}
	if tree {
		// The leader is gone (or late); the rest of its tree gets what is left of the grace.
		left := max(grace-time.Since(t0), 0)
		if !exited || !WaitGone(pid, members, left) {
			if !exited { // the app may have forked while shutting down
				members = append(members, Tree(pid, pid)...)
			}
			escalated = true
			SignalTree(pid, members, unix.SIGKILL)
		}
	} else if !exited {
		escalated = true
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if !exited {
		select {
		case <-done:
		case <-time.After(killWait):
			return escalated, fmt.Errorf("pid %d did not die after SIGKILL", pid)
		}
	}
	return escalated, nil
}

// Sweep ends what a process that led group pgid left in it once it is gone: sig, then SIGKILL
// after grace. Children the app left behind would hold its port and outlive it (PM2 pain 10).
func Sweep(pgid int, sig unix.Signal, grace time.Duration) {
	if !Alive(pgid, nil) {
		return
	}
	SignalTree(pgid, nil, sig)
	if !WaitGone(pgid, nil, grace) {
		SignalTree(pgid, nil, unix.SIGKILL)
	}
}
