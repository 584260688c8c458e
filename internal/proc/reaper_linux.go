// Package proc starts processes in their own process group, signals whole process trees, and
// reaps every child of the daemon from one place.
package proc

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is how a process ended.
type Exit struct {
	Pid    int
	Code   int         // exit code, or -1 when killed by a signal
	Signal unix.Signal // the signal that killed it, or 0
	At     time.Time
}

func (e Exit) String() string {
	if e.Signal != 0 {
		return "killed by " + unix.SignalName(e.Signal)
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// Reaper owns every wait of the process: it is the only caller of wait4, so exits of the apps it
// started, and of orphans re-parented to us as subreaper (or PID 1), are never stolen (DESIGN §3b).
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan Exit
	log     *slog.Logger
}

// NewReaper makes this process a child subreaper and starts reaping on SIGCHLD.
func NewReaper(log *slog.Logger) (*Reaper, error) {
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("become child subreaper: %w", err)
		}
	}
	r := &Reaper{waiters: map[int]chan Exit{}, log: log}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGCHLD)
	go func() {
		for range sig {
			r.reapAll()
		}
	}()
	return r, nil
}

func (r *Reaper) reapAll() {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("reaper panic", "panic", fmt.Sprint(p))
		}
	}()
	for {
		var ws unix.WaitStatus
		r.mu.Lock()
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			r.mu.Unlock()
			continue
		}
		if pid <= 0 || err != nil {
			r.mu.Unlock()
			return
		}
		ch := r.waiters[pid]
		delete(r.waiters, pid)
		r.mu.Unlock()
		if ch == nil {
			continue // an orphan re-parented to us; reaping it is all it needs
		}
		e := Exit{Pid: pid, Code: -1, At: time.Now()}
		switch {
		case ws.Exited():
			e.Code = ws.ExitStatus()
		case ws.Signaled():
			e.Signal = ws.Signal()
		}
		ch <- e
	}
}

// Cmd describes one process to start.
type Cmd struct {
	Argv  []string
	Env   []string
	Dir   string
	Files []int // become fds 0, 1, 2, 3… in the child; everything else stays closed (CLOEXEC)
}

// Start forks and execs cmd in a new process group and returns its pid and a channel that
// receives its exit. The reaper lock is held across fork and registration, so an exit can never
// be reaped before someone waits for it.
func (r *Reaper) Start(c Cmd) (int, <-chan Exit, error) {
	if len(c.Argv) == 0 {
		return 0, nil, fmt.Errorf("empty command")
	}
	files := make([]uintptr, len(c.Files))
	for i, fd := range c.Files {
		files[i] = uintptr(fd)
	}
	attr := &syscall.ProcAttr{
		Dir:   c.Dir,
		Env:   c.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	ch := make(chan Exit, 1)
	r.mu.Lock()
	pid, err := syscall.ForkExec(c.Argv[0], c.Argv, attr)
	if err == nil {
		r.waiters[pid] = ch
	}
	r.mu.Unlock()
	if err != nil {
		return 0, nil, fmt.Errorf("exec %s: %w", c.Argv[0], err)
	}
	return pid, ch, nil
}
