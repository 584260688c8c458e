package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/internal/events"
)

// Status is an instance's state, with PM2's names (they are part of jlist's contract).
type Status string

const (
	Launching Status = "launching"
	Online    Status = "online"
	Stopping  Status = "stopping"
	Stopped   Status = "stopped"
	Errored   Status = "errored"
	Waiting   Status = "waiting restart"
)

// trigger is what moves an instance from one status to another.
type trigger int

const (
	trCreate       trigger = iota // a new instance, not started yet
	trRestoreStop                 // listed again by a new daemon: stopped
	trRestoreErr                  // listed again by a new daemon: errored
	trRestoreWait                 // listed again: its process is adopted or restarted
	trLaunch                      // its process is being started
	trSpawnFailed                 // the process could not be started
	trReady                       // the process serves (or needs no readiness)
	trPromote                     // a reload's replacement took over
	trAdopt                       // a process left by an earlier daemon is its own again
	trStop                        // a stop, delete or restart ends the process
	trRetire                      // scale down drains the process
	trStopped                     // nothing of it runs any more, on purpose
	trExitStop                    // it exited and the policy says stay stopped
	trExitRestart                 // it exited and the policy says restart (after a delay)
	trGiveUp                      // it exited too often too soon: errored
	trListenFailed                // it asked for a port tend could not give it
	trClosing                     // a start came after the daemon began to stop
)

// transitions is the whole state machine: a trigger is allowed only from the statuses listed,
// and leads to one status. Anything else is an error (containerd's shape), never applied. An
// array, laid out at link time (a map literal would be built on every CLI call).
var transitions = [...]struct {
	name string
	from []Status
	to   Status
}{
	trCreate:       {"create", []Status{""}, Stopped},
	trRestoreStop:  {"restore", []Status{""}, Stopped},
	trRestoreErr:   {"restore-errored", []Status{""}, Errored},
	trRestoreWait:  {"restore-waiting", []Status{""}, Waiting},
	trLaunch:       {"launch", []Status{Stopped, Errored, Waiting, Online, Launching}, Launching},
	trSpawnFailed:  {"spawn-failed", []Status{Launching}, Errored},
	trReady:        {"ready", []Status{Launching}, Online},
	trPromote:      {"promote", []Status{Online, Launching}, Online},
	trAdopt:        {"adopt", []Status{Waiting}, Online},
	trStop:         {"stop", []Status{Launching, Online}, Stopping},
	trRetire:       {"retire", []Status{Launching, Online}, Stopping},
	trStopped:      {"stopped", []Status{Stopping, Waiting, Errored, Online, Launching, Stopped}, Stopped},
	trExitStop:     {"exit-stop", []Status{Launching, Online}, Stopped},
	trExitRestart:  {"exit-restart", []Status{Launching, Online}, Waiting},
	trGiveUp:       {"give-up", []Status{Launching, Online}, Errored},
	trListenFailed: {"listen-failed", []Status{Stopping}, Errored},
	trClosing:      {"closing", []Status{Stopped, Errored, Waiting, Online, Launching}, Stopped},
}

func (t trigger) String() string {
	if t < 0 || int(t) >= len(transitions) {
		return "trigger(" + strconv.Itoa(int(t)) + ")"
	}
	return transitions[t].name
}

// ErrInvalidTransition is the kind of a trigger the state machine does not allow: a bug in
// tend, reported to the caller and in tend.log.
var ErrInvalidTransition = errors.New("invalid state transition")

// next returns the status trigger t leads to from status from.
func next(from Status, t trigger) (Status, error) {
	if t < 0 || int(t) >= len(transitions) || !slices.Contains(transitions[t].from, from) {
		return from, fmt.Errorf("%w: %s from %q", ErrInvalidTransition, t, from)
	}
	return transitions[t].to, nil
}

// transition applies t. A trigger not allowed from the current status changes nothing: it is
// logged as an error and kept in fault, which the command being handled reports to its caller.
func (in *Instance) transition(t trigger) error {
	to, err := next(in.status, t)
	if err != nil {
		err = fmt.Errorf("app %q (id %d): %w", in.spec.Name, in.id, err)
		in.log.Error("state machine", "err", err)
		in.fault = errors.Join(in.fault, err)
		return err
	}
	if to != in.status {
		in.status = to
		in.publish()
		e := events.Event{Kind: strings.ReplaceAll(string(to), " ", "_"), Reason: t.String()}
		if in.cur != nil {
			e.Pid = in.cur.pid
		}
		in.emit(e)
	}
	return nil
}
