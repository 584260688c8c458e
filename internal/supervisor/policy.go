package supervisor

import (
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/config"
)

// History is what the restart policy remembers between runs of one instance.
type History struct {
	Restarts  int           // PM2's restart_time
	Unstable  int           // PM2's unstable_restarts: consecutive runs shorter than min_uptime
	PrevDelay time.Duration // last exponential backoff delay

	// The start limit: the times of the latest automatic starts, and the backoff it put the
	// instance on (0: none).
	Starts     []time.Time
	LimitDelay time.Duration
	// RetryDelay is the cooldown before an errored instance is tried again (0: none yet).
	RetryDelay time.Duration
	// MemoryRestarts counts the replacements max_memory_restart made (also in Restarts), the
	// last at LastMemory.
	MemoryRestarts int
	LastMemory     time.Time
	// Exits are the latest exits tend did not ask for, and memory-limit replacements, newest
	// last (at most keptExits), for describe.
	Exits []Exit
}

// Exit is one end of a process that tend did not ask for (or a memory-limit replacement).
type Exit struct {
	At     time.Time
	Code   int    // -1 when a signal ended it
	Signal string // "" when it exited
	Uptime time.Duration
	Why    string // "exit", or "memory limit"
}

// keptExits is how many exits describe shows.
const keptExits = 10

// withExit is h with x added to its exits, the oldest dropped past keptExits.
func withExit(h History, x Exit) History {
	h.Exits = append(slices.Clone(h.Exits), x)
	if n := len(h.Exits); n > keptExits {
		h.Exits = h.Exits[n-keptExits:]
	}
	return h
}

// Outcome is what to do after an unrequested exit.
type Outcome int

const (
	Restart Outcome = iota
	Stop            // not restarted: autorestart off, or a stop exit code
	Give            // too many unstable restarts: errored
)

// Decision is the policy's answer: with Restart, the delay before the start (Limited: the start
// limit set it); with Give, the cooldown before the errored instance is tried again (0: never).
type Decision struct {
	Action  Outcome
	Delay   time.Duration
	Limited bool
}

// A crash storm ends (systemd's StartLimitBurst and StartLimitIntervalSec): more than the burst
// of automatic starts within the interval puts the instance on a backoff that starts at
// limitFirst and doubles up to limitCap, until a run lasts the interval. Runs that each outlive
// min_uptime under load (a machine busy with 40 crashing apps) never count as unstable; this
// limit counts starts, not short runs. An errored instance is tried again after a cooldown that
// doubles up to erroredRetryCap (PM2 never retries).
const (
	limitFirst      = 5 * time.Second
	limitCap        = time.Minute
	erroredRetryCap = time.Hour
)

// Backoff constants from PM2: ×1.5 per restart, capped, reset after a long enough run.
const (
	backoffCap      = 15 * time.Second
	backoffReset    = 30 * time.Second
	crashLoopFloor  = 100 * time.Millisecond
	crashLoopWindow = time.Second
)

// Decide is the restart policy: a pure function of the spec, the history and how the run ended.
// It returns the decision and the history to keep.
func Decide(spec *config.AppSpec, h History, uptime time.Duration, exitCode int, now time.Time) (Decision, History) {
	if !spec.Autorestart {
		return Decision{Action: Stop}, h
	}
	for _, c := range spec.StopExitCodes {
		if c == exitCode {
			return Decision{Action: Stop}, h
		}
	}
	burst, interval := spec.StartLimit()
	if uptime >= interval {
		// A run that lasted: the storm, if there was one, is over.
		h.Starts, h.LimitDelay, h.RetryDelay = nil, 0, 0
	}
	if uptime < spec.MinUptime {
		h.Unstable++
	} else {
		h.Unstable = 0
	}
	if spec.MaxRestarts > 0 && h.Unstable >= spec.MaxRestarts || spec.MaxRestarts == 0 && h.Unstable > 0 {
		// The count stays, for jlist; a start resets it.
		d := Decision{Action: Give}
		if first := spec.RetryErrored(); first > 0 {
			h.RetryDelay = doubled(h.RetryDelay, first, erroredRetryCap)
			d.Delay = h.RetryDelay
		}
		return d, h
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
	if burst > 0 {
		at := now.Add(d.Delay)
		keep := h.Starts[:0:0]
		for _, t := range h.Starts {
			if at.Sub(t) < interval {
				keep = append(keep, t)
			}
		}
		h.Starts = append(keep[max(len(keep)-burst, 0):], at)
		if h.LimitDelay > 0 || len(h.Starts) > burst {
			h.LimitDelay = doubled(h.LimitDelay, limitFirst, limitCap)
			d.Delay, d.Limited = max(d.Delay, h.LimitDelay), true
		}
	}
	return d, h
}

// AutoRestarted is the history when an automatic restart starts the process (not when it is
// decided: PM2 counts a restart delayed by restart_delay once it happens).
func AutoRestarted(h History) History {
	h.Restarts++
	return h
}

// doubled is the next delay of a doubling backoff: first, then twice the last, up to most.
func doubled(last, first, most time.Duration) time.Duration {
	if last <= 0 {
		return min(first, most)
	}
	return min(2*last, most)
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

// Started is the history when the user starts an instance (after a stop, or an errored one):
// the start limit and the cooldown begin again; the counts jlist shows stay.
func Started(h History) History {
	h.Starts, h.LimitDelay, h.RetryDelay = nil, 0, 0
	return h
}
