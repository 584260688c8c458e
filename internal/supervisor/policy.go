package supervisor

import (
	"time"

	"github.com/tend-sh/tend/internal/config"
)

// History is what the restart policy remembers between runs of one instance.
type History struct {
	Restarts  int           // PM2's restart_time
	Unstable  int           // PM2's unstable_restarts: consecutive runs shorter than min_uptime
	PrevDelay time.Duration // last exponential backoff delay
}

// Outcome is what to do after an unrequested exit.
type Outcome int

const (
	Restart Outcome = iota
	Stop            // not restarted: autorestart off, or a stop exit code
	Give            // too many unstable restarts: errored
)

// Decision is the policy's answer.
type Decision struct {
	Action Outcome
	Delay  time.Duration
}

// Backoff constants from PM2: ×1.5 per restart, capped, reset after a long enough run.
const (
	backoffCap      = 15 * time.Second
	backoffReset    = 30 * time.Second
	crashLoopFloor  = 100 * time.Millisecond
	crashLoopWindow = time.Second
)

// Decide is the restart policy: a pure function of the spec, the history and how the run ended.
// It returns the decision and the history to keep.
func Decide(spec *config.AppSpec, h History, uptime time.Duration, exitCode int) (Decision, History) {
	if !spec.Autorestart {
		return Decision{Action: Stop}, h
	}
	for _, c := range spec.StopExitCodes {
		if c == exitCode {
			return Decision{Action: Stop}, h
		}
	}
	if uptime < spec.MinUptime {
		h.Unstable++
	} else {
		h.Unstable = 0
	}
	if spec.MaxRestarts > 0 && h.Unstable >= spec.MaxRestarts || spec.MaxRestarts == 0 && h.Unstable > 0 {
		return Decision{Action: Give}, h // the count stays, for jlist; a start resets it
	}
	d := Decision{Action: Restart, Delay: spec.RestartDelay}
	if spec.ExpBackoffDelay > 0 {
		switch {
		case uptime >= backoffReset || h.PrevDelay == 0:
			h.PrevDelay = spec.ExpBackoffDelay
		default:
			h.PrevDelay = min(time.Duration(float64(h.PrevDelay)*1.5), backoffCap)
		}
		d.Delay = h.PrevDelay
	}
	// With no delay configured and min_uptime set low, a process that dies at once would be
	// respawned in a tight loop; never restart sooner than this after a short run.
	if uptime < crashLoopWindow && d.Delay < crashLoopFloor {
		d.Delay = crashLoopFloor
	}
	h.Restarts++
	return d, h
}

// The history changes the user's own actions make; with Decide, these are the only changes.

// Restarted is the history after a restart the user asked for: PM2 counts it, and the count of
// unstable runs starts again.
func Restarted(h History) History {
	h.Restarts++
	h.Unstable = 0
	return h
}

// Reloaded is the history after a reload replaced the process: PM2 counts it as a restart.
func Reloaded(h History) History {
	h.Restarts++
	return h
}

// Retried is the history when an errored instance is started again: a fresh chance (jlist
// showed the count that made it give up until now).
func Retried(h History) History {
	h.Unstable = 0
	return h
}
