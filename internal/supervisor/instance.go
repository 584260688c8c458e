package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/errdefs"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/state"
	"golang.org/x/sys/unix"
)

// Info is an immutable picture of one instance, published on every change. Readers (jlist, ls,
// the registry) use it and never wait on the instance's goroutine.
type Info struct {
	ID        int
	Index     int
	Name      string
	Spec      *config.AppSpec
	Status    Status
	Pid       int
	StartTick uint64 // with Pid, identifies the process across a daemon crash
	History   History
	Started   time.Time // wall clock of the last start (pm_uptime)
	Created   time.Time // PM2's created_at
	ExitCode  *int
	OutLog    string
	ErrLog    string
	LogFile   string
	PidFile   string // where the pid file of its process is (PM2's pm_pid_path)

	channel *ipc.Channel // the current process's IPC channel, for messages (nil without one)

	Listening []int          // the ports the app's sockets listen on
	Others    []state.Proc   // the replacement and draining processes of a reload
	Logs      *LogHealth     // what its log files could not take (live, shared by every snapshot)
	Custom    *CustomMetrics // what its process reported (live, shared by every snapshot)
	watch     *watcher       // its app's watching (live): see Watching
	RetryAt   time.Time      // errored: when it is tried again (zero: never)
}

// LogHealth counts the lines of an instance, stdout's and stderr's, since the instance was
// created: those read from the app, and those its log files could not take (a full disk), with
// the last reason.
type LogHealth struct {
	Dropped [2]atomic.Int64
	Lines   [2]atomic.Int64 // lines read from the app, stdout's and stderr's
	reason  atomic.Pointer[string]
}

// Reason is the last write error that dropped lines, or "".
func (h *LogHealth) Reason() string {
	if r := h.reason.Load(); r != nil {
		return *r
	}
	return ""
}

type cmdKind int

const (
	cmdStart cmdKind = iota
	cmdStop
	cmdRestart
	cmdReload
	cmdDelete
	cmdSignal
	cmdRespec     // take a new spec without touching the process (scale changes only the count)
	cmdStdin      // write a line to the process's stdin (PM2's send)
	cmdAdopt      // take over a process an earlier daemon started
	cmdRotation   // apply the rotation settings in effect now to the open log files
	cmdRetryLater // an errored instance restored by a new daemon: its cooldown begins
	cmdReset      // PM2's reset: the restart counters go back to 0
	cmdMemory     // the process tree is over max_memory_restart: reload or restart it
)

type command struct {
	kind  cmdKind
	sig   unix.Signal
	spec  *config.AppSpec // for start/restart/respec: a new spec to apply
	drain bool            // for delete: let the process finish its requests first (scale down)
	line  []byte          // for stdin
	bytes int64           // for memory: what the tree used
	at    time.Time       // for memory: when that was sampled
	proc  proc.Process    // for adopt
	reply chan error
}

type evKind int

const (
	evExit         evKind = iota
	evReady               // the app said ready (process.send('ready'), pkg/worker)
	evListening           // the app listens on its slot socket (Node cluster 'listening', the shim)
	evListenFailed        // the app asked for a port tend could not give it
)

// event is something a run reports to its instance's goroutine.
type event struct {
	r    *run
	kind evKind
	err  error
}

// Instance is one process slot of an app, owned by one goroutine (loop). Only that goroutine
// touches the fields below the line; everyone else talks to it through cmds or reads info.
type Instance struct {
	id     int
	index  int // the slot: NODE_APP_INSTANCE, and which socket of each port it serves
	app    *App
	sup    *Supervisor
	cmds   chan command
	events chan event
	info   atomic.Pointer[Info]
	done   chan struct{}

	// --- owned by loop ---
	log         *slog.Logger
	spec        *config.AppSpec
	status      Status
	hist        History
	cur         *run
	next        *run // the replacement while a reload waits for it to be ready
	reloadReply chan error
	retired     []*run // old runs draining after a reload
	retiring    sync.WaitGroup
	created     time.Time
	exitCode    *int
	files       []*logs.File // out, err, combined (may be nil entries)
	paths       [3]string
	timer       *time.Timer
	timerFor    timerKind
	waiters     []chan error // start/restart replies waiting for online
	fault       error        // invalid transitions met while handling the current command
	logHealth   *LogHealth
	custom      *CustomMetrics
	retryAt     time.Time // when an errored instance is tried again (zero: never)
}

// newInstance makes an instance and starts its goroutine; t (trCreate, or a restore trigger)
// gives its first status.
func newInstance(sup *Supervisor, app *App, id, index int, spec *config.AppSpec, hist History, t trigger) *Instance {
	in := &Instance{
		id: id, index: index, app: app, sup: sup, spec: spec, hist: hist,
		// Unbuffered: a command's sender waits for its reply anyway. Events are posted by the
		// run's watchers, which wait when it is full; a few in flight is plenty, and each slot
		// costs every instance (1,000 processes: 4 MB for commands alone at 16, 0.6 MB for
		// events).
		cmds:      make(chan command),
		events:    make(chan event, 4),
		done:      make(chan struct{}),
		log:       sup.log.With("app", spec.Name, "instance", id),
		logHealth: &LogHealth{}, custom: &CustomMetrics{},
	}
	in.created = time.Now()
	in.status, _ = next("", t)
	in.publish()
	go in.loop()
	return in
}

// Info returns the last published picture.
func (in *Instance) Info() *Info { return in.info.Load() }

// ID is the instance's pm_id.
func (in *Instance) ID() int { return in.id }

func (in *Instance) do(c command) error {
	c.reply = make(chan error, 1)
	select {
	case in.cmds <- c:
	case <-in.done:
		return fmt.Errorf("%w: app %q (id %d) was removed meanwhile (deleted, or scaled down)", ErrNotFound, in.Info().Name, in.id)
	}
	select {
	case err := <-c.reply:
		return err
	case <-in.done:
		// A delete answers and then ends the goroutine: both may be ready at once, and the
		// answer wins.
		select {
		case err := <-c.reply:
			return err
		default:
		}
		return fmt.Errorf("%w: app %q (id %d) was removed meanwhile (deleted, or scaled down)", ErrNotFound, in.Info().Name, in.id)
	}
}

// post hands an event to the instance's goroutine; after a delete nobody listens any more.
func (in *Instance) post(ev event) {
	select {
	case in.events <- ev:
	case <-in.done:
	}
}

func (in *Instance) publish() {
	i := &Info{
		ID: in.id, Index: in.index, Name: in.spec.Name, Spec: in.spec, Status: in.status,
		History: in.hist, Created: in.created, ExitCode: in.exitCode,
		OutLog: in.paths[0], ErrLog: in.paths[1], LogFile: in.paths[2], PidFile: in.pidPath(),
		Listening: in.app.socks.Ports(), Logs: in.logHealth, Custom: in.custom, watch: &in.app.watch,
	}
	if in.status == Errored {
		i.RetryAt = in.retryAt
	}
	if r := in.cur; r != nil {
		i.Pid, i.StartTick, i.Started, i.channel = r.pid, r.startTick, r.startedAt, r.channel
	}
	for _, r := range append([]*run{in.next}, in.retired...) {
		if r != nil {
			if _, gone := r.ended(); !gone {
				i.Others = append(i.Others, state.Proc{Pid: r.pid, StartTick: r.startTick})
			}
		}
	}
	if in.paths[0] == "" {
		i.OutLog, i.ErrLog, i.LogFile = in.spec.LogPaths(in.sup.logDir, in.id)
	}
	in.info.Store(i)
	in.sup.changed()
}

func (in *Instance) loop() {
	defer close(in.done)
	for {
		var timerC <-chan time.Time
		if in.timer != nil {
			timerC = in.timer.C
		}
		select {
		case c := <-in.cmds:
			if in.handle(c) {
				return
			}
		case ev := <-in.events:
			in.safely(func() { in.onEvent(ev) })
			in.fault = nil // no caller to tell: tend.log has it
		case <-timerC:
			in.timer = nil
			in.safely(in.onTimer)
			in.fault = nil
		}
	}
}

// safely keeps a bug in one instance's handling from taking the daemon down.
// It returns what it recovered, as an error for the caller of a command.
func (in *Instance) safely(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			in.log.Error("panic in instance", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error in app %q (id %d): %v; see tend.log", in.spec.Name, in.id, p)
		}
	}()
	f()
	return nil
}

func (in *Instance) handle(c command) (exit bool) {
	var err error
	orig := c.reply
	in.fault = nil
	perr := in.safely(func() {
		switch c.kind {
		case cmdStart:
			err = in.start(c.spec, c.reply)
			if err == nil {
				c.reply = nil // answered when the instance is online
			}
		case cmdRestart:
			err = in.restart(c.spec, c.reply)
			if err == nil {
				c.reply = nil
			}
		case cmdMemory:
			err = in.overMemory(c.bytes, c.at, c.reply)
			if err == nil {
				c.reply = nil
			}
		case cmdReload:
			err = in.reload(c.reply)
			if err == nil {
				c.reply = nil // answered once the old process is gone
			}
		case cmdStop:
			err = in.stop("stop")
		case cmdDelete:
			if c.drain {
				in.retireForScale()
			}
			err = in.stop("delete")
			in.closeFiles()
			exit = true
		case cmdSignal:
			if in.cur == nil {
				err = fmt.Errorf("%w: app %q (id %d) is not running", ErrNotRunning, in.spec.Name, in.id)
			} else {
				err = in.cur.p.Signal(c.sig)
			}
		case cmdRespec:
			// The log files stay: the running process writes to them, and `logs` must read
			// what it writes. The next process opens the files the new spec names.
			if c.spec.Name != in.spec.Name {
				in.log = in.sup.log.With("app", c.spec.Name, "instance", in.id) // renamed
			}
			in.spec = c.spec
			in.publish()
		case cmdStdin:
			err = in.writeStdin(c.line)
		case cmdAdopt:
			err = in.adopt(c.proc)
		case cmdRetryLater:
			if d := in.spec.RetryErrored(); d > 0 && in.status == Errored {
				in.hist.RetryDelay = d
				in.armTimer(d, timerRetry)
				in.retryAt = time.Now().Add(d)
				in.publish()
			}
		case cmdReset:
			in.hist.Restarts, in.hist.Unstable = 0, 0
			in.publish()
		case cmdRotation:
			rot := in.sup.Rotation(in.spec)
			for _, f := range in.files {
				f.SetRotation(rot)
			}
		}
	})
	if perr != nil {
		// The command died half way: its caller learns it failed, rather than wait or be told
		// it worked.
		err = errors.Join(err, perr)
		c.reply = orig
	}
	if in.fault != nil {
		// A transition the state machine refused: the caller learns of it now, even when its
		// answer was to come later (a second answer is dropped).
		err = errors.Join(err, in.fault)
		c.reply = orig
		in.fault = nil
	}
	answer(c.reply, err)
	return exit
}

// answer replies without ever blocking the instance: each reply channel has room for one
// answer, and a second one (after a panic in the middle of a start) is dropped.
func answer(ch chan error, err error) {
	if ch == nil {
		return
	}
	select {
	case ch <- err:
	default:
	}
}

func (in *Instance) writeStdin(line []byte) error {
	fd := -1
	if in.cur != nil {
		fd = in.cur.p.Holder().Fd(proc.KindStdin)
	}
	if fd < 0 {
		return fmt.Errorf("%w: app %q (id %d) is not running", ErrNotRunning, in.spec.Name, in.id)
	}
	n, err := unix.Write(fd, line)
	switch {
	case err == unix.EAGAIN || err == nil && n < len(line):
		return fmt.Errorf("app %q (id %d) does not read its stdin: the pipe is full", in.spec.Name, in.id)
	case err != nil:
		return fmt.Errorf("write to the stdin of app %q (id %d): %w", in.spec.Name, in.id, err)
	}
	return nil
}

// ErrNotRunning is returned for an action that needs a running process.
var ErrNotRunning = errdefs.ErrNotRunning
