package supervisor

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/sockets"
	"github.com/tend-sh/tend/internal/state"
)

// Kept is what a keeper held for the previous daemon: the fds of its runs and its apps'
// listening sockets. Restore owns them: what it does not adopt, it closes.
type Kept struct {
	Runs    []KeptRun
	Sockets []sockets.KeptGroup
	// Parent is the keeper's pid, whose children the runs' processes are; 0 for none.
	Parent int
}

// KeptRun is one run's fds, and what its record says of it.
type KeptRun struct {
	Holder *proc.Holder
	Info   proc.RunInfo
}

// Restore brings back the apps of a registry left by a daemon that died without being told to.
// The apps are listed at once, with their ids, restart counts and the status they had (errored
// stays errored), their listening sockets taken back as they were; then, in the background,
// each instance meant to run adopts its newest process (when Options.Adopt is set; else it is
// stopped), with the fds the keeper kept, and every other process of that daemon is stopped: an
// old one of an unfinished reload, one of an app the registry does not know yet. An instance
// whose process ended while no daemon ran adopts it as ended, so that the restart policy sees
// its exit; one with no process left is started again.
func (s *Supervisor) Restore(reg state.Registry, kept Kept) {
	s.mu.Lock()
	s.nextID = max(s.nextID, reg.NextID)
	if w := reg.WorkerID; w > s.workerID.Load() {
		s.workerID.Store(w)
	}
	var toStart, toRetry []*Instance
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
			in := newInstance(s, a, ri.ID, ri.Index, &spec, History{Restarts: ri.Restarts, Unstable: ri.Unstable}, t)
			s.nextID = max(s.nextID, ri.ID+1)
			a.instances = append(a.instances, in)
			switch Status(ri.Status) {
			case Online, Launching, Waiting: // not Stopping: the user was stopping or deleting it
				toStart = append(toStart, in)
			case Errored:
				toRetry = append(toRetry, in)
			}
		}
		s.apps = append(s.apps, a)
	}
	for _, g := range kept.Sockets {
		a := s.findLocked(g.App)
		if a == nil || !s.adopt {
			g.Close()
			s.store.Drop(g.Key)
			continue
		}
		if err := a.socks.Adopt(g); err != nil {
			s.log.Error("kept sockets not adopted", "app", g.App, "err", err)
		}
	}
	for _, a := range s.apps {
		a.socks.Prune(func(slot int) bool {
			return slot == proxySlot || slices.ContainsFunc(a.instances, func(in *Instance) bool { return in.index == slot })
		})
	}
	s.mu.Unlock()
	s.changed()
	// The apps that ran and had watch are watched again (a stopped one stays unwatched).
	watched := map[*App]bool{}
	for _, in := range toStart {
		if sp := in.Info().Spec; len(sp.Watch) > 0 && !watched[in.app] {
			watched[in.app] = true
			s.setWatching(in.app, true, sp)
		}
	}
	// An errored app's cooldown began again with this daemon (the last one's timer died with it).
	for _, in := range toRetry {
		_ = in.do(command{kind: cmdRetryLater})
	}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in restore", "panic", fmt.Sprint(p))
			}
		}()
		s.adoptAll(reg, kept, toStart)
	}()
}

type instKey struct {
	app string
	id  int
}

type candidate struct {
	pid  int
	tick uint64
	h    *proc.Holder
}

func (s *Supervisor) adoptAll(reg state.Registry, kept Kept, toStart []*Instance) {
	known := map[int]bool{}
	byInst := map[instKey][]candidate{}
	for _, r := range kept.Runs {
		if r.Info.Pid <= 0 && kept.Parent > 0 {
			// The daemon died between fork and telling the keeper the pid: the process, if
			// it exists, is the keeper's child whose stdout is this run's pipe.
			r.Info.Pid, r.Info.StartTick = r.Holder.FindChild(kept.Parent)
		}
		if r.Info.Pid <= 0 {
			r.Holder.Close() // it started no process
			continue
		}
		k := instKey{r.Info.App, r.Info.Instance}
		byInst[k] = append(byInst[k], candidate{r.Info.Pid, r.Info.StartTick, r.Holder})
		known[r.Info.Pid] = true
	}
	adopted := map[int]bool{} // instance ids
	var wg sync.WaitGroup
	stop := func(app string, spec stopSpec, pr proc.Process, why string) {
		s.log.Warn(why, "app", app, "pid", pr.Pid())
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pr.Holder().Close()
			if spec.app != nil && spec.app.NodeCluster() {
				drainLeftover(spec.app, pr)
			}
			_, _ = pr.Stop(spec.sig, spec.grace, spec.tree)
		}()
	}
	for _, a := range reg.Apps {
		spec := stopSpec{killSignal(&a.Spec), a.Spec.KillTimeout, a.Spec.Treekill, &a.Spec}
		for _, i := range a.Instances {
			k := instKey{a.Spec.Name, i.ID}
			cands := byInst[k]
			delete(byInst, k)
			for _, p := range append([]state.Proc{{Pid: i.Pid, StartTick: i.StartTick}}, i.Others...) {
				if p.Pid > 0 && !slices.ContainsFunc(cands, func(c candidate) bool { return c.pid == p.Pid }) {
					cands = append(cands, candidate{p.Pid, p.StartTick, nil})
					known[p.Pid] = true
				}
			}
			var procs []proc.Process
			for _, c := range cands {
				pr, err := s.spawner.Adopt(c.pid, c.tick, c.h)
				if err != nil {
					if c.h != nil {
						c.h.Close()
					}
					continue // gone, or another process now
				}
				procs = append(procs, pr)
			}
			// The newest that can be adopted is the instance's (the registry may not have been
			// saved since it started); the others are stopped.
			slices.SortFunc(procs, func(x, y proc.Process) int { return cmp.Compare(y.StartTick(), x.StartTick()) })
			in := findInstance(toStart, i.ID)
			for _, pr := range procs {
				// Under a keeper, a process it did not keep has no pipes a daemon can read: one
				// a daemon without a keeper left. It is started again instead.
				withFds := kept.Parent == 0 || pr.Holder().Fd(proc.KindStdout) >= 0
				// A Node cluster worker that had not got its socket when the daemon died asked
				// for it in a message that daemon read and never answered: it would wait
				// forever. One the registry saw online had its socket, or did not want one.
				waiting := a.Spec.NodeCluster() && pr.Holder().Fd(proc.KindSocket) < 0 &&
					!(Status(i.Status) == Online && i.Pid == pr.Pid())
				if s.adopt && !adopted[i.ID] && in != nil && withFds && !waiting {
					if err := in.do(command{kind: cmdAdopt, proc: pr}); err == nil {
						adopted[i.ID] = true
						continue
					}
				}
				stop(a.Spec.Name, spec, pr, "stopping a process left by the previous daemon")
			}
		}
	}
	// Runs of apps the registry does not know: started just before the daemon died, before the
	// registry was saved. The start is rolled back.
	for k, cands := range byInst {
		for _, c := range cands {
			pr, err := s.spawner.Adopt(c.pid, c.tick, c.h)
			if err != nil {
				c.h.Close()
				continue
			}
			stop(k.app, stopSpec{unix.SIGTERM, config.DefaultKillTimeout, true, nil}, pr, "stopping a process of an app the previous daemon had not saved")
		}
	}
	wg.Wait() // the old processes would still hold ports and files
	for _, in := range toStart {
		if adopted[in.id] || in.Info().Status != Waiting {
			continue // adopted, or the user stopped or deleted it meanwhile
		}
		// Its slot serves nobody until the new process is ready: connections go to the others.
		in.app.socks.SetLive(in.index, false)
		go func() { _ = in.do(command{kind: cmdStart}) }()
	}
}

type stopSpec struct {
	sig   unix.Signal
	grace time.Duration
	tree  bool
	app   *config.AppSpec // nil for an app the registry does not know
}

// drainLeftover lets an old Node cluster worker of an interrupted reload finish, as the reload
// would have: told to stop accepting and to disconnect, it has drain_timeout to end its
// requests and close its channel.
func drainLeftover(spec *config.AppSpec, pr proc.Process) {
	fd, err := pr.Holder().Borrow(proc.KindIPC)
	if err != nil {
		return
	}
	ch, err := ipc.Open(fd, true)
	if err != nil {
		return
	}
	defer ch.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { recover() }()
		_ = ch.Serve(func(ipc.Message) {})
	}()
	ch.Retire(proc.Environ(pr.Pid())["TEND_NODE_SHIM"] == "1")
	t := time.NewTimer(spec.Drain())
	defer t.Stop()
	select {
	case <-done:
	case <-pr.Done():
	case <-t.C:
	}
}

func findInstance(ins []*Instance, id int) *Instance {
	for _, in := range ins {
		if in.id == id {
			return in
		}
	}
	return nil
}
