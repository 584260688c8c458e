package proc

import (
	"time"

	"golang.org/x/sys/unix"
)

// Cmd describes one process to start.
type Cmd struct {
	Argv []string
	Env  []string
	Dir  string

	// IPC asks for an IPC socketpair; the child's end is fd IPCChildFd(len(Listen)).
	IPC bool
	// Listen are slot sockets the child gets as fds 3, 4…; Start owns them from the call on,
	// even on error.
	Listen []int

	// App and Instance label the run's fds in the holder's manifest.
	App      string
	Instance int

	// Cred, when set, is the user the process runs as (--uid/--gid): it needs a daemon that
	// runs as root.
	Cred *Cred
}

// Cred is a user and its groups.
type Cred struct {
	Uid, Gid uint32
	Groups   []uint32 // supplementary groups
}

// Process is one started or adopted process, as the supervisor drives it.
type Process interface {
	Pid() int
	// StartTick is the process's start time in clock ticks since boot: with Pid, it names the
	// process across pid reuse.
	StartTick() uint64
	// Holder owns every fd of the run; the supervisor closes it once the run is over.
	Holder() *Holder
	// Done is closed once the process is gone; Exit then says how it ended.
	Done() <-chan struct{}
	// OnExit runs f in a goroutine of its own once the process is gone (at once if it is): a
	// watcher that needs no goroutine while it waits, which 1,000 processes would pay for.
	OnExit(f func())
	Exit() Exit
	// Signal sends sig to the main process only.
	Signal(sig unix.Signal) error
	// Stop ends the process: sig to it (to its whole tree when tree is set: its process group
	// and every descendant, those that left the group included), then SIGKILL to the same once
	// grace has passed. A grace of 0 kills at once. It returns once the process is gone and,
	// with tree, its tree too or SIGKILLed (the last members may be reaped a moment later);
	// escalated says SIGKILL was needed, and the error is set only when the process outlived
	// SIGKILL. It may be called from any goroutine.
	Stop(sig unix.Signal, grace time.Duration, tree bool) (escalated bool, err error)
	// Sweep ends what a process that is gone left behind in its group: sig, then SIGKILL after
	// grace. A group with no live member costs one kill(2).
	Sweep(sig unix.Signal, grace time.Duration)
}

// Spawner starts and adopts processes. ForkExec is the real one; tests use a fake.
type Spawner interface {
	// Start starts c in a process group of its own, its fds created in a new Holder.
	Start(c Cmd) (Process, error)
	// Adopt takes over a process started by an earlier daemon: pid, if it still runs and
	// started at startTick, with the fds held (h may hold none). It fails for a process that
	// is gone or is another one now.
	Adopt(pid int, startTick uint64, h *Holder) (Process, error)
}
