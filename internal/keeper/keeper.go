// Package keeper is the small process above the daemon that lets apps outlive it (DESIGN §4): it
// runs the daemon as its child, keeps a copy of every fd the daemon puts in its care (each run's
// pipes and IPC end, each app's listening sockets), is the subreaper the apps fall back to when
// the daemon dies, reaps them and forwards their exits, and starts a new daemon at once, which
// takes everything back through its own new channel. It never reads what an app writes and does
// little else, so it rarely changes; when tend is upgraded it re-executes itself from the new
// binary, keeping its pid, its children and every fd.
//
// The channel is a SOCK_SEQPACKET socketpair the keeper hands each daemon it starts (EnvFd): a
// versioned hello, then records (JSON with their fds riding in the same message, at most MaxFds)
// one way and exits the other. There is no socket file: no other process can reach the keeper.
package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/home"
)

// Options configure a keeper.
type Options struct {
	Home    string
	Version string // this tend's: a daemon of another one asks the keeper to upgrade itself
	// Argv runs the daemon (Argv[0] is a path); Env is its environment, to which the channel's
	// fd is added.
	Argv []string
	Env  []string
	// Stdout and Stderr are the daemon's.
	Stdout, Stderr *os.File
	Log            *slog.Logger
	// Ready, if set, runs once the first daemon serves (a foreground start); its error stops the
	// daemon and the keeper.
	Ready func() error
}

// DaemonExit is a daemon that stopped on purpose with a non-zero status: it has said why itself.
type DaemonExit struct{ Code int }

func (e DaemonExit) Error() string { return fmt.Sprintf("the daemon exited with status %d", e.Code) }

// maxExits bounds the exits kept for a daemon that is not there: the oldest go first.
const maxExits = 4096

type record struct {
	info  json.RawMessage
	names []json.RawMessage
	fds   []int
}

type keeper struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	records map[string]*record
	exits   []Exit
	conn    *net.UnixConn // the current daemon's channel, once it has said hello
	bye     bool          // the daemon stops on purpose
	replace bool          // the daemon exits to be replaced (tend update)
	upgrade string        // re-execute from this binary

	served   chan struct{} // a daemon of this keeper has served
	serveMu  sync.Once
	upgrades chan struct{}
	// upgradeWait holds the daemon's channel still while the keeper re-executes itself: a
	// message read then would die with the old image. Closed if the exec fails.
	upgradeWait chan struct{}

	daemonDone chan struct{} // closed once the current daemon's channel is read to its end
	servings   chan struct{} // a daemon says it serves (each one, not only the first)
}

// Run runs a keeper and its daemon until the daemon stops on purpose (tend kill, SIGTERM to
// either), restarting it whenever it dies otherwise.
func Run(o Options) error {
	p := home.At(o.Home)
	if err := p.Prepare(); err != nil {
		return err
	}
	if pid := p.PM2Daemon(); pid > 0 {
		return fmt.Errorf("TEND_HOME %s is PM2's home and PM2's daemon runs there (pid %d); both would write the same log files: run `pm2 kill` first, or set TEND_HOME to another folder", o.Home, pid)
	}
	lock, err := home.OpenFile(p.KeeperLock, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("open %s: %v", p.KeeperLock, home.PathCause(err))
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(p.KeeperPid)
		return fmt.Errorf("a tend keeper already runs for %s (pid %s); use it, or stop it with `tend kill`", o.Home, strings.TrimSpace(string(pid)))
	}
	if err := home.WritePid(p.KeeperPid); err != nil {
		return fmt.Errorf("write %s: %v", p.KeeperPid, home.PathCause(err))
	}
	defer os.Remove(p.KeeperPid)
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("keeper: become child subreaper: %w", err)
		}
	}
	k := newKeeper(o)
	return k.run(lock, 0, notifySignals())
}

// notifySignals starts catching the signals the keeper answers. A keeper that re-executed itself
// does so first of all: until then, a SIGTERM would kill it.
func notifySignals() chan os.Signal {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR2)
	return sigs
}

func newKeeper(o Options) *keeper {
	o.Argv = slices.Clone(o.Argv) // tend update changes its first word
	return &keeper{o: o, log: o.Log, records: map[string]*record{}, served: make(chan struct{}), upgrades: make(chan struct{}, 1), servings: make(chan struct{}, 1)}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// serveConn serves a daemon's channel and returns what is closed once it has been read to its
// end: after the daemon's death, every message it sent has been handled then.
func (k *keeper) serveConn(conn *net.UnixConn) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.serve(conn)
	}()
	return done
}

// run is the keeper's loop. daemon is a daemon already running (a keeper that re-executed
// itself), or 0 to start one.
func (k *keeper) run(lock *os.File, daemon int, sigs chan os.Signal) error {
	defer signal.Stop(sigs)

	var (
		started  = time.Now() // when the daemon started
		deaths   int          // quick deaths in a row
		restart  <-chan time.Time
		stopping bool
		readyErr error
		readyCh  chan error
		served   = k.served
	)
	if isClosed(k.served) {
		served = nil // a keeper that re-executed itself: Ready ran before
	}
	start := func() error {
		pid, err := k.startDaemon()
		if err != nil {
			return err
		}
		daemon, started = pid, time.Now()
		return nil
	}
	if daemon == 0 {
		if err := start(); err != nil {
			return err
		}
	}
	sigs <- unix.SIGCHLD // exits that came while a re-executing keeper could not hear of them
	for {
		select {
		case <-served:
			served = nil
			if k.o.Ready != nil {
				readyCh = make(chan error, 1)
				go func() { readyCh <- k.o.Ready() }()
			}
		case readyErr = <-readyCh:
			readyCh = nil
			if readyErr != nil && daemon > 0 {
				stopping = true
				_ = unix.Kill(daemon, unix.SIGTERM)
			}
		case <-k.servings:
			if stopping && daemon > 0 {
				// A daemon started only to stop the apps it adopted (below).
				_ = unix.Kill(daemon, unix.SIGTERM)
			}
		case <-restart:
			restart = nil
			if stopping && !k.keepsAnything() {
				return readyErr
			}
			if err := start(); err != nil {
				deaths++
				k.log.Error("keeper: start the daemon", "err", err)
				restart = time.After(backoff(deaths))
			}
		case <-k.upgrades:
			k.reexec(lock, daemon)
		case s := <-sigs:
			switch s {
			case unix.SIGCHLD:
				ws, gone := k.reap(daemon)
				if !gone {
					continue
				}
				lived := time.Since(started)
				daemon = 0
				// Judged once its last messages (bye, serving, replace) have been handled.
				select {
				case <-k.daemonDone:
				case <-time.After(5 * time.Second):
					k.log.Warn("keeper: the dead daemon's channel is still open; judging its death without its last messages")
				}
				k.mu.Lock()
				bye, replace := k.bye, k.replace
				k.bye, k.replace = false, false
				k.mu.Unlock()
				code := ws.ExitStatus()
				if ws.Signaled() {
					code = 128 + int(ws.Signal())
				}
				switch {
				case bye || stopping:
					k.log.Info("keeper: the daemon has stopped; so does the keeper", "status", code)
					if readyErr != nil {
						return readyErr
					}
					if code != 0 {
						return DaemonExit{Code: code}
					}
					return nil
				case !isClosed(k.served):
					return fmt.Errorf("the daemon exited at start (%s); see %s", status(ws), home.At(k.o.Home).Log)
				}
				if replace {
					k.log.Info("keeper: the daemon exited to be replaced; starting the new one")
					restart = time.After(0)
					continue
				}
				if lived >= 30*time.Second {
					deaths = 0
				}
				deaths++
				delay := backoff(deaths)
				k.log.Error("keeper: the daemon died; starting another", "status", status(ws), "after", delay)
				restart = time.After(delay)
			case unix.SIGTERM, unix.SIGINT:
				stopping = true
				if daemon > 0 {
					_ = unix.Kill(daemon, unix.SIGTERM)
				} else if k.keepsAnything() {
					// Between two daemons: one is started now, adopts the apps and is told to
					// stop them as it serves, rather than leave them to nobody.
					restart = time.After(0)
				} else {
					return readyErr
				}
			case unix.SIGUSR2:
				if daemon > 0 {
					_ = unix.Kill(daemon, unix.SIGUSR2)
				}
			}
		}
	}
}

// keepsAnything reports whether the keeper holds any record: apps a daemon must stop.
func (k *keeper) keepsAnything() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.records) > 0
}

// backoff is the wait before the next daemon, after that many quick deaths in a row (each
// daemon lived under 30 s; a longer life starts the count again). Apps that log block in write()
// once their pipe is full, so the first ten come back at once; a daemon that keeps dying then
// waits from 100 ms, doubling, up to 10 s.
func backoff(deaths int) time.Duration {
	if deaths <= freeRestarts {
		return 0
	}
	return min(100*time.Millisecond<<min(deaths-freeRestarts-1, 7), 10*time.Second)
}

const freeRestarts = 10

func status(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exit code %d", ws.ExitStatus())
}

// startDaemon starts a daemon with a new channel as its fd 3, and serves the channel.
func (k *keeper) startDaemon() (int, error) {
	conn, end, err := pair()
	if err != nil {
		return 0, err
	}
	defer unix.Close(end)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		conn.Close()
		return 0, err
	}
	defer devnull.Close()
	env := append(slices.DeleteFunc(slices.Clone(k.o.Env), func(s string) bool {
		return strings.HasPrefix(s, EnvFd+"=") || strings.HasPrefix(s, EnvResume+"=")
	}), EnvFd+"=3")
	k.mu.Lock()
	argv := slices.Clone(k.o.Argv) // tend update may name another binary
	k.mu.Unlock()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []uintptr{devnull.Fd(), k.o.Stdout.Fd(), k.o.Stderr.Fd(), uintptr(end)},
	}
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err == syscall.ENOENT {
		// The binary is gone from its path (`go run` deletes its build; a package manager may
		// remove it): run our own image, which is the daemon's too.
		k.log.Warn("keeper: the tend binary is gone from its path; starting the daemon from the keeper's own image", "path", argv[0])
		pid, err = syscall.ForkExec("/proc/self/exe", argv, attr)
	}
	if err != nil {
		conn.Close()
		return 0, fmt.Errorf("keeper: start the daemon %s: %w", argv[0], err)
	}
	k.daemonDone = k.serveConn(conn)
	return pid, nil
}

// reap collects every child that has exited. Exits of apps are told to the daemon (or kept for
// the next one); the daemon's own is returned.
func (k *keeper) reap(daemon int) (ws unix.WaitStatus, daemonGone bool) {
	var batch []Exit
	for {
		var s unix.WaitStatus
		pid, err := unix.Wait4(-1, &s, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			break
		}
		if pid == daemon {
			ws, daemonGone = s, true
			continue
		}
		e := Exit{Pid: pid, Code: -1, At: time.Now().UnixNano()}
		switch {
		case s.Exited():
			e.Code = s.ExitStatus()
		case s.Signaled():
			e.Signal = int(s.Signal())
		}
		batch = append(batch, e)
	}
	if len(batch) > 0 {
		k.mu.Lock()
		k.exits = append(k.exits, batch...)
		if over := len(k.exits) - maxExits; over > 0 {
			k.log.Warn("keeper: exits dropped while no daemon listened", "dropped", over)
			k.exits = k.exits[over:]
		}
		k.flushLocked()
		k.mu.Unlock()
	}
	return ws, daemonGone
}

// flushLocked tells the current daemon the exits it has not heard of.
func (k *keeper) flushLocked() {
	if k.conn == nil || len(k.exits) == 0 {
		return
	}
	_ = k.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := k.sendExitsLocked(k.conn); err != nil {
		k.log.Warn("keeper: exits not told to the daemon; kept for the next one", "err", err)
	}
}

// exitsPerMsg keeps a message of exits well under maxMsg (about 60 bytes an exit).
const exitsPerMsg = 1000

// sendExitsLocked sends the kept exits in messages of at most exitsPerMsg, forgetting each batch
// once it is sent.
func (k *keeper) sendExitsLocked(conn *net.UnixConn) error {
	for len(k.exits) > 0 {
		n := min(len(k.exits), exitsPerMsg)
		if err := send(conn, msg{Op: opExit, Exits: k.exits[:n]}, nil); err != nil {
			return err
		}
		k.exits = k.exits[n:]
	}
	k.exits = nil
	return nil
}

// serve handles one daemon's channel until it closes.
func (k *keeper) serve(conn *net.UnixConn) {
	defer func() {
		if p := recover(); p != nil {
			k.log.Error("keeper: panic serving the daemon", "panic", fmt.Sprint(p))
		}
		k.mu.Lock()
		if k.conn == conn {
			k.conn = nil
		}
		k.mu.Unlock()
		conn.Close()
	}()
	buf, oob := recvBuffers()
	for {
		m, fds, err := recv(conn, buf, oob)
		if err != nil {
			// A daemon killed with data still unread on its side resets the connection rather
			// than closing it: that is its end too, as EOF is.
			if !errors.Is(err, errEOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
				k.log.Error("keeper: the daemon's channel", "err", err)
				if _, ok := err.(*net.OpError); !ok {
					continue // one bad message is refused; the channel goes on
				}
			}
			return
		}
		if err := k.handle(conn, m, fds); err != nil {
			k.log.Error("keeper: refused", "op", m.Op, "err", err)
			if m.Op == opHello {
				return
			}
		}
		if m.Op == opUpgrade {
			k.mu.Lock()
			wait := k.upgradeWait
			k.mu.Unlock()
			if wait != nil {
				<-wait // returns only if the exec failed
			}
		}
	}
}

func (k *keeper) handle(conn *net.UnixConn, m msg, fds []int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch m.Op {
	case opHello:
		if err := checkPeer(conn); err != nil {
			return err
		}
		if m.Version != Version {
			// The daemon refuses to adopt on seeing our version; it gets no fds to guess about.
			_ = send(conn, msg{Op: opHello, Version: Version, Pid: os.Getpid()}, nil)
			return fmt.Errorf("%w: a daemon of protocol %d; this keeper speaks %d", ErrVersion, m.Version, Version)
		}
		return k.helloLocked(conn)
	case opPut:
		old := k.records[m.Key]
		k.records[m.Key] = &record{info: m.Info, names: m.Names, fds: fds}
		if old != nil {
			closeAll(old.fds) // after the new copies are in: a socket never loses its last holder
		}
	case opDrop:
		if r := k.records[m.Key]; r != nil {
			closeAll(r.fds)
			delete(k.records, m.Key)
		}
	case opServing:
		k.serveMu.Do(func() { close(k.served) })
		select {
		case k.servings <- struct{}{}:
		default:
		}
	case opBye:
		k.bye = true
	case opReplace:
		if m.Exe == "" || !strings.HasPrefix(m.Exe, "/") {
			return fmt.Errorf("replace: %q is not an absolute path", m.Exe)
		}
		k.replace = true
		k.o.Argv[0] = m.Exe
	case opUpgrade:
		k.upgrade = m.Exe
		k.upgradeWait = make(chan struct{})
		select {
		case k.upgrades <- struct{}{}:
		default:
		}
	default:
		return fmt.Errorf("unknown operation %q", m.Op)
	}
	return nil
}

// helloLocked hands a new daemon everything kept, then makes it the one told of exits.
func (k *keeper) helloLocked(conn *net.UnixConn) error {
	if err := send(conn, msg{Op: opHello, Version: Version, Pid: os.Getpid(), Build: k.o.Version}, nil); err != nil {
		return err
	}
	// The exits of the gap come first: the daemon applies them before it adopts anything.
	if err := k.sendExitsLocked(conn); err != nil {
		return err
	}
	keys := make([]string, 0, len(k.records))
	for key := range k.records {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		r := k.records[key]
		if err := send(conn, msg{Op: opRecord, Key: key, Info: r.info, Names: r.names}, r.fds); err != nil {
			return err
		}
	}
	if err := send(conn, msg{Op: opEnd, Records: len(keys)}, nil); err != nil {
		return err
	}
	k.conn = conn
	return nil
}
