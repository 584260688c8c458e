package proc

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/keeper"
)

// ForkExec is the real Spawner: fork/exec through the Reaper, which owns every wait4. With a
// keeper, every run's fds are entrusted to it before the process is exec'd, and the exits of
// adopted processes (the keeper's children) come from it.
type ForkExec struct {
	r     *Reaper
	store keeper.Store

	mu   sync.Mutex
	gone map[int]Exit // exits the keeper told of that no adopted process has claimed yet
	seq  atomic.Uint64
}

// NewForkExec returns a Spawner that starts processes as children of this one, entrusting their
// fds to store (nil: to nobody).
func NewForkExec(r *Reaper, store keeper.Store) *ForkExec {
	if store == nil {
		store = keeper.Nop{}
	}
	return &ForkExec{r: r, store: store, gone: map[int]Exit{}}
}

// maxGone bounds the exits kept for processes nobody adopted (an app's orphaned grandchildren).
const maxGone = 4096

// Exited is told the exit of a process the keeper reaped: the adopted process it ends, or one
// about to be adopted.
func (f *ForkExec) Exited(e keeper.Exit) {
	x := Exit{Pid: e.Pid, Code: e.Code, Signal: unix.Signal(e.Signal), At: time.Unix(0, e.At)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.r.deliver(x) {
		return
	}
	if len(f.gone) >= maxGone {
		for pid := range f.gone { // any one: these are leftovers nobody asked about
			delete(f.gone, pid)
			break
		}
	}
	f.gone[e.Pid] = x
}

// Start implements Spawner.
func (f *ForkExec) Start(c Cmd) (Process, error) {
	h, err := NewHolder(c.App, c.Instance, c.IPC, c.Listen)
	if err != nil {
		return nil, err
	}
	// The keeper has its copies before the process exists: a daemon killed at any later point
	// leaves no pipe without a reader.
	h.Entrust(f.store, RunKeyPrefix+strconv.FormatInt(time.Now().UnixNano(), 36)+"."+strconv.FormatUint(f.seq.Add(1), 36))
	// The exit may be reaped before forkExec returns: p exists first, and the reaper ends it.
	p := &process{h: h, done: make(chan struct{})}
	pid, pidfd, err := f.r.forkExec(c.Argv, c.Env, c.Dir, h.ChildFiles(), c.Cred, p.end)
	h.CloseChildEnds()
	if err != nil {
		h.Close()
		return nil, err
	}
	p.pid, p.pidfd = pid, pidfd
	if st, err := ReadStat(pid); err == nil {
		p.tick = st.StartTicks
	}
	h.SetProcess(pid, p.tick, pidfd)
	return p, nil
}

// Adopt implements Spawner. An adopted process is usually not our child but the keeper's: its
// exit comes from the keeper (Exited), and without one it is seen through a pidfd with an
// unknown exit code (-1). A process that ended while no daemon ran, and whose exit the keeper
// kept, is adopted as ended, so that its exit goes through the restart policy as if seen.
func (f *ForkExec) Adopt(pid int, startTick uint64, h *Holder) (Process, error) {
	if h == nil {
		h = AdoptedHolder(nil)
	}
	endedWith := func(e Exit) Process {
		h.SetProcess(pid, startTick, -1)
		p := &process{pid: pid, pidfd: -1, tick: startTick, h: h, done: make(chan struct{})}
		p.end(e)
		return p
	}
	ended := func() (Process, error) {
		f.mu.Lock()
		e, ok := f.gone[pid]
		delete(f.gone, pid)
		f.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("adopt pid %d: it is gone or is another process now", pid)
		}
		return endedWith(e), nil
	}
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return ended()
	}
	// Checked after the pidfd is open: from now on the pid cannot name another process.
	st, err := ReadStat(pid)
	if err != nil || st.StartTicks != startTick {
		unix.Close(pidfd)
		return ended()
	}
	f.mu.Lock()
	if e, ok := f.gone[pid]; ok {
		delete(f.gone, pid)
		// The keeper reaped this very process since it was found alive (an exit reaped before
		// it started is an earlier process's of that pid).
		if at := StartedAt(startTick); !at.IsZero() && e.At.After(at.Add(-time.Second)) {
			f.mu.Unlock()
			unix.Close(pidfd)
			return endedWith(e), nil
		}
	}
	reaped := f.r.watch(pid) // under f.mu: an exit told from now on comes here
	f.mu.Unlock()
	h.SetProcess(pid, startTick, pidfd)
	p := &process{pid: pid, pidfd: pidfd, tick: startTick, h: h, done: make(chan struct{})}
	wait := 50 * time.Millisecond // our own child: the reaper has the status at once
	if _, ok := f.store.(keeper.Nop); !ok {
		wait = 5 * time.Second // the keeper's: it reaps and tells us over its channel
	}
	var lost <-chan struct{} // closed if the keeper dies: nobody will tell us then
	if l, ok := f.store.(interface{ Lost() <-chan struct{} }); ok {
		lost = l.Lost()
	}
	// One goroutine per adopted process (after a daemon's death, every app is one): the pidfd
	// turns readable when the process ends, before anyone reaps it, so the reaper's word is
	// awaited after it.
	go func() {
		defer func() { recover() }()
		if waitPidfd(pidfd) != nil {
			p.end(<-reaped) // no pidfd to wait on: the reaper's word alone ends it
			return
		}
		// Give whoever reaps it a moment to deliver the real status.
		select {
		case e := <-reaped:
			p.end(e)
		case <-lost:
			f.r.unwatch(pid)
			p.end(Exit{Pid: pid, Code: -1, At: time.Now()})
		case <-time.After(wait):
			f.r.unwatch(pid)
			p.end(Exit{Pid: pid, Code: -1, At: time.Now()})
		}
	}()
	return p, nil
}

// SweepOrphans stops the live processes re-parented to this one (as subreaper) that apps left
// behind when they died, and those re-parented to the keeper (the orphans of adopted apps):
// SIGTERM, then SIGKILL after a second. It returns their pids.
func (f *ForkExec) SweepOrphans() []int {
	orphans := Orphans(nil)
	if k, ok := f.store.(interface{ KeeperPid() int }); ok && k.KeeperPid() > 0 {
		orphans = append(orphans, ChildrenOf(k.KeeperPid(), map[int]bool{os.Getpid(): true})...)
	}
	if len(orphans) > 0 {
		SignalTree(0, orphans, unix.SIGTERM)
		if !WaitGone(0, orphans, time.Second) {
			SignalTree(0, orphans, unix.SIGKILL)
		}
	}
	return orphans
}

// waitPidfd returns once the process of pidfd has exited, through the runtime's poller (a
// pidfd turns readable then), so no thread is held while it waits.
func waitPidfd(pidfd int) error {
	fd, err := dupCloexec(pidfd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(p, 0)
		return n > 0
	})
}

// process is a child started by ForkExec, or a process it adopted.
type process struct {
	pid   int
	pidfd int // owned by the holder; -1 without one
	tick  uint64
	h     *Holder
	done  chan struct{}
	exit  Exit

	mu     sync.Mutex
	ended  bool
	onExit []func()
}

// end records the exit, once: the first word on it wins.
func (p *process) end(e Exit) {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	p.ended = true
	p.exit = e
	close(p.done)
	fs := p.onExit
	p.onExit = nil
	p.mu.Unlock()
	for _, f := range fs {
		go f()
	}
}

// OnExit implements Process.
func (p *process) OnExit(f func()) {
	p.mu.Lock()
	if !p.ended {
		p.onExit = append(p.onExit, f)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	go f()
}

func (p *process) Pid() int              { return p.pid }
func (p *process) StartTick() uint64     { return p.tick }
func (p *process) Holder() *Holder       { return p.h }
func (p *process) Done() <-chan struct{} { return p.done }
func (p *process) Exit() Exit            { <-p.done; return p.exit }
func (p *process) Signal(sig unix.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("send %s to pid %d: %w", unix.SignalName(sig), p.pid, unix.ESRCH)
	default:
	}
	if err := unix.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("send %s to pid %d: %w", unix.SignalName(sig), p.pid, err)
	}
	return nil
}

// Stop implements Process.
func (p *process) Stop(sig unix.Signal, grace time.Duration, tree bool) (bool, error) {
	return stop(p.pid, p.done, sig, grace, tree)
}

// Sweep implements Process.
func (p *process) Sweep(sig unix.Signal, grace time.Duration) { Sweep(p.pid, sig, grace) }
