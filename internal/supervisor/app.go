package supervisor

import (
	"slices"
	"sync"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/sockets"
)

// App is a named group of instances sharing one spec, and the listening sockets they share.
type App struct {
	Name      string
	instances []*Instance
	socks     *sockets.Set

	pmu   sync.Mutex
	proxy *proxy.Proxy // proxy mode: relays the public port while the app runs

	// removing are instances a smaller count took out, until their processes are gone and their
	// slot sockets closed: their slots are not given to new instances meanwhile, and the
	// registry still lists them (a daemon that dies meanwhile is followed by one that stops them).
	removing []*Instance

	watch watcher // watching its files (watch), while on
}

func (s *Supervisor) newApp(name string) *App {
	return &App{Name: name, socks: sockets.NewSet(name, s.claims, s.store)}
}

// releaseIfIdle closes the app's sockets once none of its instances runs: a stopped app holds
// no port, so its clients are refused rather than left waiting.
func (s *Supervisor) releaseIfIdle(a *App) {
	s.mu.Lock()
	ins := slices.Clone(a.instances)
	s.mu.Unlock()
	for _, in := range ins {
		if i := in.Info(); i.Pid != 0 || (i.Status != Stopped && i.Status != Errored) {
			return
		}
	}
	// A process still counted by the set (an instance being removed, a reload's old process, a
	// start under way) keeps the sockets open; the last one to go calls this again.
	if a.socks.CloseIfUnused() {
		a.closeProxy()
	}
}

// remove deletes an instance a smaller count took out (draining it first when drain is set),
// closes its slot's sockets, and then frees the slot.
func (s *Supervisor) remove(a *App, in *Instance, drain bool) error {
	err := in.do(command{kind: cmdDelete, drain: drain})
	a.socks.CloseSlot(in.index)
	s.mu.Lock()
	a.removing = slices.DeleteFunc(a.removing, func(x *Instance) bool { return x == in })
	s.mu.Unlock()
	s.changed()
	s.releaseIfIdle(a)
	return err
}

// resizeLocked gives the app n instances: the existing ones keep their slots, new ones take the
// lowest free slots, and a smaller count takes out those with the highest (the caller deletes
// them). The instances taken out still count in the app's sockets until their processes are gone.
func (s *Supervisor) resizeLocked(a *App, sp *config.AppSpec, n int) (kept, added, removed []*Instance) {
	kept = slices.Clone(a.instances)
	slices.SortFunc(kept, func(x, y *Instance) int { return x.id - y.id })
	if len(kept) > n {
		// PM2 removes the oldest processes, the lowest ids, first; the instance numbers they
		// free are the ones a later scale-up takes again.
		removed, kept = kept[:len(kept)-n], kept[len(kept)-n:]
		a.instances = slices.DeleteFunc(a.instances, func(in *Instance) bool { return slices.Contains(removed, in) })
		a.removing = append(a.removing, removed...)
	}
	for _, idx := range freeSlots(append(slices.Clone(kept), a.removing...), n-len(kept)) {
		in := newInstance(s, a, s.nextID, idx, sp, History{}, trCreate)
		s.nextID++
		a.instances = append(a.instances, in)
		added = append(added, in)
	}
	return kept, added, removed
}

// freeSlots returns the n lowest slots no instance of ins has.
func freeSlots(ins []*Instance, n int) []int {
	used := map[int]bool{}
	for _, in := range ins {
		used[in.index] = true
	}
	var out []int
	for idx := 0; len(out) < n; idx++ {
		if !used[idx] {
			out = append(out, idx)
		}
	}
	return out
}

// resizing says what resize does with each part of resizeLocked's outcome.
type resizing struct {
	kept     cmdKind // cmdRestart (start of a config: new settings, new processes) or cmdRespec
	startNew bool    // start the added instances
	drain    bool    // let the removed ones finish their requests first
}

// scaling is how scale and a reload of a config file change the count: the running processes
// are left alone, and the instances the user asked for start even with autostart off.
var scaling = resizing{kept: cmdRespec, startNew: true, drain: true}

// resize applies resizeLocked's outcome, every instance side by side: the kept ones restart or
// take the new spec as they are, new ones start, and removed ones go.
func (s *Supervisor) resize(a *App, sp *config.AppSpec, kept, added, removed []*Instance, how resizing) []error {
	errs := make([]error, len(kept)+len(added)+len(removed))
	var wg sync.WaitGroup
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	for i, in := range kept {
		run(i, func() error { return in.do(command{kind: how.kept, spec: sp}) })
	}
	for i, in := range added {
		if how.startNew {
			run(len(kept)+i, func() error { return in.do(command{kind: cmdStart, spec: sp}) })
		}
	}
	for i, in := range removed {
		run(len(kept)+len(added)+i, func() error { return s.remove(a, in, how.drain) })
	}
	wg.Wait()
	return errs
}
