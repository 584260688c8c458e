package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Store keeps copies of fds outside the daemon, so that they outlive it: the keeper through a
// Link, or nothing (Nop) in a daemon that runs without one.
type Store interface {
	// Put keeps copies of fds under key, replacing whatever key held; info and names (one per fd)
	// say what they are, for the next daemon. The fds stay the caller's.
	Put(key string, info any, names []any, fds []int)
	// Drop closes the copies kept under key.
	Drop(key string)
}

// Nop is a Store that keeps nothing.
type Nop struct{}

func (Nop) Put(string, any, []any, []int) {}
func (Nop) Drop(string)                   {}

// Record is what a keeper kept under one key, as a new daemon receives it: it owns the fds.
type Record struct {
	Key   string
	Info  json.RawMessage
	Names []json.RawMessage
	Fds   []int
}

// Close closes the record's fds (one nobody takes).
func (r Record) Close() { closeAll(r.Fds) }

// State is what a keeper hands a daemon that connects: every record it keeps, and the exits of
// processes it reaped while no daemon was there to be told.
type State struct {
	KeeperPid int
	Build     string // the keeper's tend version
	Records   []Record
	Exits     []Exit
}

// EnvFd names the inherited fd of a daemon's channel to its keeper.
const EnvFd = "TEND_KEEPER_FD"

// Link is a daemon's channel to its keeper. It implements Store; a message that cannot be sent
// is logged and counted, never silent.
type Link struct {
	conn   *net.UnixConn
	log    *slog.Logger
	mu     sync.Mutex
	failed atomic.Int64
	gone   atomic.Bool   // the keeper has died: nothing is kept any more
	lost   chan struct{} // closed then
	pid    int           // the keeper's
}

// FromEnv connects to the keeper whose channel this process inherited, if any: nil, and no
// error, for a daemon that runs without a keeper. The variable is removed from the environment,
// so that apps never inherit it.
func FromEnv(log *slog.Logger) (*Link, State, error) {
	v, ok := os.LookupEnv(EnvFd)
	if !ok {
		return nil, State{}, nil
	}
	os.Unsetenv(EnvFd)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, State{}, fmt.Errorf("keeper: %s=%q is not an fd", EnvFd, v)
	}
	return Connect(fd, log)
}

// Connect takes over fd, the daemon's end of a keeper channel: it says hello, checks the
// keeper's version and receives its state.
func Connect(fd int, log *slog.Logger) (*Link, State, error) {
	conn, err := fileConn(fd, "keeper")
	if err != nil {
		return nil, State{}, err
	}
	l := &Link{conn: conn, log: log, lost: make(chan struct{})}
	st, err := l.hello()
	if err != nil {
		conn.Close()
		return nil, State{}, err
	}
	l.pid = st.KeeperPid
	return l, st, nil
}

func (l *Link) hello() (State, error) {
	if err := checkPeer(l.conn); err != nil {
		return State{}, err
	}
	if err := send(l.conn, msg{Op: opHello, Version: Version}, nil); err != nil {
		return State{}, err
	}
	// The state comes at once; a keeper that says nothing is not one to wait on.
	_ = l.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer l.conn.SetReadDeadline(time.Time{})
	buf, oob := recvBuffers()
	m, _, err := recv(l.conn, buf, oob)
	if err != nil {
		return State{}, fmt.Errorf("keeper hello: %w", err)
	}
	if m.Op != opHello || m.Version != Version {
		return State{}, fmt.Errorf("%w: the keeper speaks version %d and this daemon %d; run `tend kill` to restart both", ErrVersion, m.Version, Version)
	}
	st := State{KeeperPid: m.Pid, Build: m.Build, Exits: m.Exits}
	for {
		m, fds, err := recv(l.conn, buf, oob)
		if err != nil {
			for _, r := range st.Records {
				closeAll(r.Fds)
			}
			return State{}, fmt.Errorf("keeper state: %w", err)
		}
		switch m.Op {
		case opRecord:
			st.Records = append(st.Records, Record{Key: m.Key, Info: m.Info, Names: m.Names, Fds: fds})
		case opExit:
			st.Exits = append(st.Exits, m.Exits...)
		case opEnd:
			if m.Records != len(st.Records) {
				for _, r := range st.Records {
					closeAll(r.Fds)
				}
				return State{}, fmt.Errorf("keeper state: %d records announced and %d came", m.Records, len(st.Records))
			}
			return st, nil
		}
	}
}

// Serve reads the keeper's messages until the channel closes, calling onExit for every process
// the keeper reaped. A keeper that closes the channel has died (kill -9 of the keeper itself):
// it is said once, and the link keeps nothing from then on.
func (l *Link) Serve(onExit func(Exit)) error {
	buf, oob := recvBuffers()
	for {
		m, _, err := recv(l.conn, buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil // we closed it: the daemon is on its way out
			}
			l.gone.Store(true)
			close(l.lost)
			l.log.Error("keeper gone: the apps run on, but will not outlive this daemon; `tend kill` and a new start bring a keeper back", "err", err)
			return nil
		}
		if m.Op == opExit {
			for _, e := range m.Exits {
				onExit(e)
			}
		}
	}
}

// Put implements Store.
func (l *Link) Put(key string, info any, names []any, fds []int) {
	ib, err := json.Marshal(info)
	if err != nil {
		l.fail("put", key, err)
		return
	}
	raw := make([]json.RawMessage, len(names))
	for i, n := range names {
		if raw[i], err = json.Marshal(n); err != nil {
			l.fail("put", key, err)
			return
		}
	}
	l.send(msg{Op: opPut, Key: key, Info: ib, Names: raw}, fds)
}

// Drop implements Store.
func (l *Link) Drop(key string) { l.send(msg{Op: opDrop, Key: key}, nil) }

// Serving tells the keeper that the control socket answers.
func (l *Link) Serving() { l.send(msg{Op: opServing}, nil) }

// Bye tells the keeper that this daemon stops on purpose: the keeper exits after it.
func (l *Link) Bye() { l.send(msg{Op: opBye}, nil) }

// Upgrade asks the keeper to re-execute itself from exe, keeping everything it holds.
func (l *Link) Upgrade(exe string) { l.send(msg{Op: opUpgrade, Exe: exe}, nil) }

// Replace tells the keeper that this daemon is about to exit to be replaced by one of exe (tend
// update): the keeper starts that one at once, and it adopts everything.
func (l *Link) Replace(exe string) { l.send(msg{Op: opReplace, Exe: exe}, nil) }

// Failed counts the messages that could not be sent.
func (l *Link) Failed() int64 { return l.failed.Load() }

// Close closes the channel (the keeper then restarts a daemon unless told Bye).
func (l *Link) Close() error { return l.conn.Close() }

// Gone reports whether the keeper has died.
func (l *Link) Gone() bool { return l.gone.Load() }

// KeeperPid is the keeper's pid: the parent of every app adopted, and of their orphans.
func (l *Link) KeeperPid() int { return l.pid }

// Lost is closed when the keeper dies: no exit will be told from then on.
func (l *Link) Lost() <-chan struct{} { return l.lost }

func (l *Link) send(m msg, fds []int) {
	if l.gone.Load() {
		return
	}
	l.mu.Lock()
	err := send(l.conn, m, fds)
	l.mu.Unlock()
	if err != nil {
		l.fail(m.Op, m.Key, err)
	}
}

func (l *Link) fail(op, key string, err error) {
	n := l.failed.Add(1)
	l.log.Error("keeper: message not sent; these fds will not survive a daemon crash", "op", op, "key", key, "failed", n, "err", err)
}
