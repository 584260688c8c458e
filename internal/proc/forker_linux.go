package proc

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ForkExec is the real Spawner: fork/exec through the Reaper, which owns every wait4.
type ForkExec struct{ r *Reaper }

// NewForkExec returns a Spawner that starts processes as children of this one.
func NewForkExec(r *Reaper) *ForkExec { return &ForkExec{r: r} }

// Start implements Spawner.
func (f *ForkExec) Start(c Cmd) (Process, error) {
	h, err := NewHolder(c.App, c.Instance, c.IPC, c.Listen)
	if err != nil {
		return nil, err
	}
	pid, pidfd, exit, err := f.r.forkExec(c.Argv, c.Env, c.Dir, h.ChildFiles())
	h.CloseChildEnds()
	if err != nil {
		h.Close()
		return nil, err
	}
	p := &process{pid: pid, pidfd: pidfd, h: h, done: make(chan struct{})}
	if st, err := ReadStat(pid); err == nil {
		p.tick = st.StartTicks
	}
	h.SetProcess(pid, p.tick, pidfd)
	go func() {
		p.exit = <-exit
		close(p.done)
	}()
	return p, nil
}

// Adopt implements Spawner. An adopted process is usually not our child: its exit is seen
// through a pidfd and its exit code is unknown (-1), unless it was re-parented to us, when the
// reaper collects it with its status.
func (f *ForkExec) Adopt(pid int, startTick uint64, h *Holder) (Process, error) {
	if h == nil {
		h = AdoptedHolder(nil)
	}
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("adopt pid %d: %w", pid, err)
	}
	// Checked after the pidfd is open: from now on the pid cannot name another process.
	st, err := ReadStat(pid)
	if err != nil || st.StartTicks != startTick || st.State == 'Z' {
		unix.Close(pidfd)
		return nil, fmt.Errorf("adopt pid %d: it is gone or is another process now", pid)
	}
	h.SetProcess(pid, startTick, pidfd)
	p := &process{pid: pid, pidfd: pidfd, tick: startTick, h: h, done: make(chan struct{})}
	reaped := f.r.watch(pid)
	var once sync.Once
	end := func(e Exit) { once.Do(func() { p.exit = e; close(p.done) }) }
	go func() {
		select {
		case e := <-reaped:
			end(e)
		case <-p.done:
		}
	}()
	go func() {
		defer func() { recover() }()
		if waitPidfd(pidfd) == nil {
			// Give the reaper a moment to deliver the real status if the process was ours.
			select {
			case e := <-reaped:
				end(e)
			case <-time.After(50 * time.Millisecond):
				f.r.unwatch(pid)
				end(Exit{Pid: pid, Code: -1, At: time.Now()})
			}
		}
	}()
	return p, nil
}

// SweepOrphans stops the live processes re-parented to this one (as subreaper) that apps left
// behind when they died: SIGTERM, then SIGKILL after a second. It returns their pids.
func (f *ForkExec) SweepOrphans() []int {
	orphans := Orphans(nil)
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
