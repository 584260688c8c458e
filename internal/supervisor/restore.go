package supervisor

import (
	"fmt"
	"sync"

	"github.com/tend-sh/tend/internal/state"
)

// Restore brings back the apps of a registry left by a daemon that died without being told to.
// The apps are listed at once, with their ids and the status they had (errored stays errored);
// then, in the background, the processes of that daemon still running are adopted through the
// spawner when Options.Adopt is set (the main process of an instance that was meant to run; the
// others of a reload are stopped), or else stopped, and the instances meant to run that have no
// process left are started again.
func (s *Supervisor) Restore(reg state.Registry) {
	s.mu.Lock()
	s.nextID = max(s.nextID, reg.NextID)
	if w := reg.WorkerID; w > s.workerID.Load() {
		s.workerID.Store(w)
	}
	var toStart []*Instance
	for _, ra := range reg.Apps {
		spec := ra.Spec
		if err := spec.Validate(); err != nil {
			s.log.Error("cannot restore app", "app", spec.Name, "err", err)
			continue
		}
		if s.findLocked(spec.Name) != nil {
			continue
		}
		a := s.newApp(spec.Name)
		for _, ri := range ra.Instances {
			t := trRestoreStop
			switch Status(ri.Status) {
			case Errored:
				t = trRestoreErr
			case Online, Launching, Waiting:
				// Adopted, or started again once the old daemon's leftovers are gone; until
				// then it waits, rather than look stopped.
				t = trRestoreWait
			}
			in := newInstance(s, a, ri.ID, ri.Index, &spec, History{Restarts: ri.Restarts}, t)
			s.nextID = max(s.nextID, ri.ID+1)
			a.instances = append(a.instances, in)
			switch Status(ri.Status) {
			case Online, Launching, Waiting: // not Stopping: the user was stopping or deleting it
				toStart = append(toStart, in)
			}
		}
		s.apps = append(s.apps, a)
	}
	s.mu.Unlock()
	s.changed()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in restore", "panic", fmt.Sprint(p))
			}
		}()
		adopted := map[int]bool{} // instance ids
		var wg sync.WaitGroup
		for _, a := range reg.Apps {
			for _, i := range a.Instances {
				for n, p := range append([]state.Proc{{Pid: i.Pid, StartTick: i.StartTick}}, i.Others...) {
					if p.Pid <= 0 {
						continue
					}
					pr, err := s.spawner.Adopt(p.Pid, p.StartTick, nil)
					if err != nil {
						continue // gone, or another process now
					}
					if in := findInstance(toStart, i.ID); s.adopt && n == 0 && in != nil {
						if err := in.do(command{kind: cmdAdopt, proc: pr}); err == nil {
							adopted[i.ID] = true
							continue
						}
					}
					s.log.Warn("stopping a process left by the previous daemon", "app", a.Spec.Name, "pid", p.Pid)
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer pr.Holder().Close()
						_, _ = pr.Stop(killSignal(&a.Spec), a.Spec.KillTimeout, a.Spec.Treekill)
					}()
				}
			}
		}
		wg.Wait() // the old processes would still hold ports and files
		for _, in := range toStart {
			if adopted[in.id] || in.Info().Status != Waiting {
				continue // adopted, or the user stopped or deleted it meanwhile
			}
			go func() { _ = in.do(command{kind: cmdStart}) }()
		}
	}()
}

func findInstance(ins []*Instance, id int) *Instance {
	for _, in := range ins {
		if in.id == id {
			return in
		}
	}
	return nil
}
