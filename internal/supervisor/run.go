package supervisor

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/proc"
)

// run is one process of an instance. Every kernel object it owns lives in its process's holder
// (DESIGN rule 2); the log pumps and the IPC channel read through dups they borrowed. An
// instance has one run, and two while a reload starts the replacement beside the old one.
type run struct {
	p         proc.Process
	pid       int
	startTick uint64
	spec      *config.AppSpec // specs are never changed once made; safe to read anywhere
	log       *slog.Logger
	channel   *ipc.Channel
	started   time.Time // monotonic, for uptime
	startedAt time.Time
	shim      bool   // a Node the cluster protocol does not fit: the preload asks for sockets
	backend   string // proxy mode: the private address the process listens on
	pidFile   string // where its pid was written ("" for nowhere)

	exited  <-chan struct{} // closed once the process is gone; p.Exit says how
	ipcDone chan struct{}   // closed when the IPC channel reaches EOF (nil without a channel)
	hurry   chan struct{}   // closed to cut a drain short: the instance is being stopped
	once    sync.Once

	app         *App // whose sockets the run counts in (released once, with the run)
	released    sync.Once
	portCapSaid bool // the socket cap was said in tend.log (on the instance's goroutine)
	// drainable: the app said it drains when asked ("drainable", pkg/worker.Serve).
	drainable atomic.Bool
	// listenErr is a listen tend could not grant, recorded before the worker hears of it: a
	// worker that exits at once on it may be seen gone before evListenFailed arrives.
	listenErr atomic.Pointer[error]
	// mark is the run's proc.MarkVar value, in the environment of each of its processes: how
	// those that left its tree are found.
	mark string
}

func newRun(in *Instance, p proc.Process) *run {
	r := &run{p: p, pid: p.Pid(), startTick: p.StartTick(), spec: in.spec, app: in.app,
		log: in.log.With("pid", p.Pid()), exited: p.Done(), hurry: make(chan struct{})}
	r.started = time.Now()
	r.startedAt = r.started
	return r
}

// ended returns how the run ended, once it has.
func (r *run) ended() (proc.Exit, bool) {
	select {
	case <-r.exited:
		return r.p.Exit(), true
	default:
		return proc.Exit{}, false
	}
}

func (r *run) hurryUp() { r.once.Do(func() { close(r.hurry) }) }

// release drops what the run held, once its process is gone: the holder closes its fds (the
// pumps keep reading their own dups until EOF), and the app's sockets may close if nothing else
// uses them.
func (r *run) release() {
	r.released.Do(func() {
		removePidFile(r)
		if r.channel != nil {
			r.channel.Close()
		}
		r.p.Holder().Close()
		r.app.socks.Release()
	})
}

func sigName(s unix.Signal) string {
	if s == 0 {
		return ""
	}
	return unix.SignalName(s)
}
