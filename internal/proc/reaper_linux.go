// Package proc owns the processes the daemon runs: the Spawner that starts (fork/exec, each in
// its own process group, their fds entrusted to the keeper first) and adopts them (their exits
// told by the keeper, whose children they are), the Holder of every fd a run owns, stop
// escalation over whole process trees, /proc scans, and the one reaper of every child of the
// daemon.
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
	waiters map[int]func(Exit)
	log     *slog.Logger
}

// NewReaper makes this process a child subreaper and starts reaping on SIGCHLD.
func NewReaper(log *slog.Logger) (*Reaper, error) {
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("become child subreaper: %w", err)
		}
	}
	r := &Reaper{waiters: map[int]func(Exit){}, log: log}
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
		told := r.waiters[pid]
		delete(r.waiters, pid)
		r.mu.Unlock()
		if told == nil {
			continue // an orphan re-parented to us; reaping it is all it needs
		}
		e := Exit{Pid: pid, Code: -1, At: time.Now()}
		switch {
		case ws.Exited():
			e.Code = ws.ExitStatus()
		case ws.Signaled():
			e.Signal = ws.Signal()
		}
		told(e)
	}
}

// forkExec forks and execs argv in a new process group, with files as its fds 0, 1, 2, 3…, and
// returns its pid and a pidfd (-1 where the kernel has none); onExit is called with its exit,
// from the reaper's goroutine (it must not block): no goroutine waits per process.
// The reaper lock is held across fork and registration, so an exit can never be reaped before
// someone waits for it, and the pidfd is opened before the pid can be reused.
func (r *Reaper) forkExec(argv, env []string, dir string, fds []int, cred *Cred, onExit func(Exit)) (pid, pidfd int, err error) {
	if len(argv) == 0 {
		return 0, -1, fmt.Errorf("empty command")
	}
	files := make([]uintptr, len(fds))
	for i, fd := range fds {
		files[i] = uintptr(fd)
	}
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	if cred != nil {
		attr.Sys.Credential = &syscall.Credential{Uid: cred.Uid, Gid: cred.Gid, Groups: cred.Groups}
	}
	pidfd = -1
	r.mu.Lock()
	pid, err = syscall.ForkExec(argv[0], argv, attr)
	if err == nil {
		r.waiters[pid] = onExit
		if fd, e := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK); e == nil {
			pidfd = fd
		}
	}
	r.mu.Unlock()
	if err != nil {
		return 0, -1, fmt.Errorf("exec %s: %w", argv[0], err)
	}
	return pid, pidfd, nil
}

// watch routes the exit of pid, should it be reaped here (a process adopted from an earlier
// daemon that was re-parented to us), to the channel returned.
func (r *Reaper) watch(pid int) <-chan Exit {
	ch := make(chan Exit, 1)
	r.mu.Lock()
	r.waiters[pid] = func(e Exit) { ch <- e }
	r.mu.Unlock()
	return ch
}

// deliver hands e to whoever watches its pid, and says whether someone did.
func (r *Reaper) deliver(e Exit) bool {
	r.mu.Lock()
	told := r.waiters[e.Pid]
	delete(r.waiters, e.Pid)
	r.mu.Unlock()
	if told != nil {
		told(e)
	}
	return told != nil
}

func (r *Reaper) unwatch(pid int) {
	r.mu.Lock()
	delete(r.waiters, pid)
	r.mu.Unlock()
}
