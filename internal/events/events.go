// Package events carries what happens to apps (a start, an exit, a restart, a reload step, a
// memory-limit restart, a scale, lines a full disk dropped) from the supervisor to whoever
// listens: `tend events`, the screens, alerting scripts. A listener that does not keep up loses
// events, never slows the supervisor, and is told how many it lost.
package events

import (
	"sync"
	"time"
)

// Event is one thing that happened, as `tend events --json` prints it.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is what happened: a status the instance entered (launching, online, stopping,
	// stopped, errored, waiting_restart), or exit, memory_limit, reload, cron, watch, scale,
	// log_drop, delete, and lost (events this listener missed).
	Kind      string `json:"kind"`
	App       string `json:"app,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	ID        *int   `json:"id,omitempty"` // the instance's pm_id
	Pid       int    `json:"pid,omitempty"`
	// Reason says why: the trigger of a status (ready, restart, stop, give-up…), a reload's step.
	Reason   string `json:"reason,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
	// UptimeMs is how long the process ran, on exit.
	UptimeMs int64 `json:"uptime_ms,omitempty"`
	// DelayMs is how long until what comes next: an automatic restart, an errored app's retry.
	DelayMs int64 `json:"delay_ms,omitempty"`
	// Memory and Limit are bytes, for memory_limit.
	Memory int64 `json:"memory,omitempty"`
	Limit  int64 `json:"limit,omitempty"`
	// From and To are instance counts, for scale.
	From *int `json:"from,omitempty"`
	To   *int `json:"to,omitempty"`
	// Stream, Dropped: log_drop's (the lines a stream's file did not take so far); lost's count.
	Stream  string `json:"stream,omitempty"`
	Dropped int64  `json:"dropped,omitempty"`
	Message string `json:"message,omitempty"`
}

// queue is how many events a listener may be behind before it loses some.
const queue = 1024

// Hub hands each event to every listener. The zero value is ready; a nil Hub drops everything.
type Hub struct {
	mu    sync.Mutex
	subs  map[*Sub]struct{}
	total int64 // events lost by every listener so far
}

// Lost is how many events listeners have lost so far, all together.
func (h *Hub) Lost() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// Sub is one listener.
type Sub struct {
	C    chan Event // closed by Close
	lost int64      // events not delivered since the last lost event, under Hub.mu
	hub  *Hub
}

// Subscribe adds a listener; Close it when done.
func (h *Hub) Subscribe() *Sub {
	s := &Sub{C: make(chan Event, queue), hub: h}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*Sub]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Close removes the listener and closes its channel.
func (s *Sub) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if _, ok := s.hub.subs[s]; ok {
		delete(s.hub.subs, s)
		close(s.C)
	}
}

// Publish hands e to every listener without waiting: a listener whose queue is full loses it,
// and gets a lost event with the count as soon as it has room again.
func (h *Hub) Publish(e Event) {
	if h == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.lost > 0 {
			select {
			case s.C <- Event{Time: e.Time, Kind: "lost", Dropped: s.lost,
				Message: "this listener fell behind; these events were not delivered to it"}:
				s.lost = 0
			default:
				s.lost++
				h.total++
				continue
			}
		}
		select {
		case s.C <- e:
		default:
			s.lost++
			h.total++
		}
	}
}
