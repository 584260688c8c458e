package supervisor

import (
	"fmt"
	"time"

	"github.com/tend-sh/tend/internal/events"
)

// MemoryRestart replaces the process of instance id because its tree uses more memory than
// max_memory_restart allows (used bytes, as the sampler saw them at a sample taken at). In
// cluster mode it is a reload, so that no request fails; in fork mode a restart. A sample older
// than the process (it was replaced meanwhile), or an instance that is not online, is left alone.
// It returns once the process is replaced.
func (s *Supervisor) MemoryRestart(id int, used int64, at time.Time) error {
	in := s.byID(id)
	if in == nil {
		return fmt.Errorf("%w: no instance with id %d", ErrNotFound, id)
	}
	return in.do(command{kind: cmdMemory, bytes: used, at: at})
}

// byID is the instance with that id, or nil.
func (s *Supervisor) byID(id int) *Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		for _, in := range a.instances {
			if in.id == id {
				return in
			}
		}
	}
	return nil
}

// overMemory is MemoryRestart on the instance's goroutine.
func (in *Instance) overMemory(used int64, at time.Time, reply chan error) error {
	limit := in.spec.MaxMemoryRestart
	if limit <= 0 || used <= limit || in.cur == nil || in.status != Online || in.next != nil || at.Before(in.cur.started) {
		answer(reply, nil)
		return nil
	}
	how := "restart"
	if in.sharesPorts() {
		how = "reload"
	}
	in.hist.MemoryRestarts++
	in.hist.LastMemory = time.Now()
	in.hist = withExit(in.hist, Exit{At: in.hist.LastMemory, Code: -1, Uptime: time.Since(in.cur.started), Why: "memory limit"})
	in.log.Warn("memory limit: the process tree uses more than max_memory_restart; replacing it",
		"pid", in.cur.pid, "memory", used, "max_memory_restart", limit, "by", how)
	in.emit(events.Event{Kind: "memory_limit", Pid: in.cur.pid, Memory: used, Limit: limit, Reason: how})
	if how == "reload" {
		return in.reload(reply)
	}
	return in.restart(nil, reply)
}
