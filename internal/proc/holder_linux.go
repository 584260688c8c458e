package proc

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/keeper"
)

// Kind names what an fd of a Holder is.
type Kind string

const (
	KindStdin  Kind = "stdin"  // write end of the child's stdin
	KindStdout Kind = "stdout" // read end of the child's stdout
	KindStderr Kind = "stderr" // read end of the child's stderr
	KindIPC    Kind = "ipc"    // the daemon's end of the IPC socketpair
	KindSocket Kind = "socket" // a listening slot socket the process was given
	KindPidfd  Kind = "pidfd"  // a pidfd of the process
)

// Entry is one fd of a Holder, as its manifest lists it.
type Entry struct {
	Name      string `json:"name"` // unique within the holder: "stdout", "socket:[::]:3000"
	Kind      Kind   `json:"kind"`
	Fd        int    `json:"fd"`
	App       string `json:"app"`
	Instance  int    `json:"instance"`
	Pid       int    `json:"pid"`
	StartTick uint64 `json:"start_tick"` // with Pid, names the process across pid reuse
}

// Holder owns every kernel object of one process run (DESIGN rule 2 and §4): the stdin write
// end, the stdout and stderr read ends, the daemon's IPC end, the slot sockets the process was
// given, and a pidfd. They are created or handed in here and closed here, once, when the run is
// over. Pumps, the IPC channel and exit watchers borrow dups (Borrow) and close only those, so
// the holder can list everything a run owns at any moment (Manifest) and hand it to another
// process.
//
// Every fd is CLOEXEC: the child gets its ends through dup2 at exec, and no other child ever
// inherits them (one stray write end and EOF never comes).
type Holder struct {
	mu       sync.Mutex
	entries  []Entry
	app      string
	instance int
	pid      int
	tick     uint64
	closed   bool

	childEnds []int // stdin r, stdout w, stderr w, listening sockets, IPC child end: until exec
	ipcChild  int

	store keeper.Store // keeps copies of the fds, under key, so that they outlive the daemon
	key   string
}

// RunInfo is what a keeper's record of a run says besides its fds.
type RunInfo struct {
	App       string `json:"app"`
	Instance  int    `json:"instance"`
	Pid       int    `json:"pid"` // 0 until the process is started
	StartTick uint64 `json:"start_tick"`
}

// keptName is what a keeper's record says of one fd.
type keptName struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
}

// NewHolder creates the stdio pipes, and the IPC socketpair when ipc is set. listen are slot
// sockets the child gets as fds 3, 4…, in that order; the holder owns them from now on, even on
// error.
func NewHolder(app string, instance int, ipc bool, listen []int) (*Holder, error) {
	h := &Holder{app: app, instance: instance, ipcChild: -1}
	var fds [3][2]int
	for i := range fds {
		if err := unix.Pipe2(fds[i][:], unix.O_CLOEXEC); err != nil {
			for j := 0; j < i; j++ {
				unix.Close(fds[j][0])
				unix.Close(fds[j][1])
			}
			closeAll(listen)
			return nil, fmt.Errorf("create pipe: %w", err)
		}
	}
	// A write to an app that does not read its stdin must fail, not block the daemon.
	_ = unix.SetNonblock(fds[0][1], true)
	h.add("stdin", KindStdin, fds[0][1])
	h.add("stdout", KindStdout, fds[1][0])
	h.add("stderr", KindStderr, fds[2][0])
	h.childEnds = []int{fds[0][0], fds[1][1], fds[2][1]}
	for i, fd := range listen {
		// The child gets the socket itself; the holder keeps a dup of its own.
		own, err := dupCloexec(fd)
		if err != nil {
			closeAll(listen[i:])
			h.CloseChildEnds()
			h.Close()
			return nil, fmt.Errorf("hold listening socket: %w", err)
		}
		h.add(fmt.Sprintf("socket:%d", 3+i), KindSocket, own)
		h.childEnds = append(h.childEnds, fd)
	}
	if ipc {
		// Node requires an AF_UNIX stream socket for NODE_CHANNEL_FD (research §1.1).
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			h.CloseChildEnds()
			h.Close()
			return nil, fmt.Errorf("create ipc socketpair: %w", err)
		}
		h.add("ipc", KindIPC, sp[0])
		h.ipcChild = len(h.childEnds)
		h.childEnds = append(h.childEnds, sp[1])
	}
	return h, nil
}

// AdoptedHolder wraps fds another holder listed in its manifest (handed over by a keeper): it
// owns them from now on.
func AdoptedHolder(entries []Entry) *Holder {
	h := &Holder{ipcChild: -1}
	for _, e := range entries {
		h.app, h.instance, h.pid, h.tick = e.App, e.Instance, e.Pid, e.StartTick
		h.add(e.Name, e.Kind, e.Fd)
	}
	return h
}

// HolderFromRecord wraps the fds of a run a keeper kept (its record's key starts with
// RunKeyPrefix): the holder owns them from now on, and keeps store up to date under the same key.
func HolderFromRecord(rec keeper.Record, store keeper.Store) (*Holder, RunInfo, error) {
	var info RunInfo
	if err := json.Unmarshal(rec.Info, &info); err != nil {
		closeAll(rec.Fds)
		return nil, info, fmt.Errorf("kept run %s: %w", rec.Key, err)
	}
	h := &Holder{app: info.App, instance: info.Instance, pid: info.Pid, tick: info.StartTick, ipcChild: -1, store: store, key: rec.Key}
	for i, raw := range rec.Names {
		var n keptName
		if err := json.Unmarshal(raw, &n); err != nil {
			closeAll(rec.Fds)
			return nil, info, fmt.Errorf("kept run %s: %w", rec.Key, err)
		}
		h.add(n.Name, n.Kind, rec.Fds[i])
	}
	return h, info, nil
}

// RunKeyPrefix starts the keeper key of every run.
const RunKeyPrefix = "run/"

// Entrust makes store keep copies of the holder's fds under key from now on: updated on every
// change, dropped when the holder closes.
func (h *Holder) Entrust(store keeper.Store, key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.store, h.key = store, key
	h.syncLocked()
}

// syncLocked gives the store the holder as it is now. A pidfd is not given: it names the
// process only to whoever opened it, and the next daemon opens its own.
func (h *Holder) syncLocked() {
	if h.store == nil || h.closed {
		return
	}
	var names []any
	var fds []int
	for _, e := range h.entries {
		if e.Kind != KindPidfd {
			names = append(names, keptName{Name: e.Name, Kind: e.Kind})
			fds = append(fds, e.Fd)
		}
	}
	h.store.Put(h.key, RunInfo{App: h.app, Instance: h.instance, Pid: h.pid, StartTick: h.tick}, names, fds)
}

// FindChild finds the child of parent whose stdout is this holder's stdout pipe: the process of
// a run whose pid was never recorded. It returns 0 when there is none.
func (h *Holder) FindChild(parent int) (pid int, startTick uint64) {
	fd := h.Fd(KindStdout)
	if fd < 0 {
		return 0, 0
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return 0, 0
	}
	want := fmt.Sprintf("pipe:[%d]", st.Ino)
	for _, c := range ChildrenOf(parent, nil) {
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", c)); err == nil && link == want {
			if s, err := ReadStat(c); err == nil {
				return c, s.StartTicks
			}
		}
	}
	return 0, 0
}

// IPCChildFd is the fd number of the IPC channel in a child given nlisten sockets: systemd's
// LISTEN_FDS start at 3, so the IPC fd comes after them.
func IPCChildFd(nlisten int) int { return 3 + nlisten }

func (h *Holder) add(name string, k Kind, fd int) {
	h.entries = append(h.entries, Entry{Name: name, Kind: k, Fd: fd})
}

// ChildFiles are the fds the child gets as 0, 1, 2, 3….
func (h *Holder) ChildFiles() []int { return h.childEnds }

// TakeChildEnds hands the child's ends to a spawner that plays the child itself (a test's
// fake): the holder forgets them.
func (h *Holder) TakeChildEnds() []int {
	ends := h.childEnds
	h.childEnds = nil
	return ends
}

// CloseChildEnds closes the daemon's copies of the child's ends once the child has them (or the
// start failed), so that EOF on the pipes means every writer is gone.
func (h *Holder) CloseChildEnds() {
	closeAll(h.childEnds)
	h.childEnds = nil
}

// SetProcess records which process the fds belong to (and a pidfd of it, when pidfd >= 0).
func (h *Holder) SetProcess(pid int, startTick uint64, pidfd int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pid, h.tick = pid, startTick
	if pidfd >= 0 {
		h.add("pidfd", KindPidfd, pidfd)
	}
	h.syncLocked()
}

// Keep adds an fd the run was given later (a slot socket handed over through the IPC channel);
// the holder takes a dup of its own, once per name. It reports whether it holds the name now.
func (h *Holder) Keep(name string, k Kind, fd int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	for _, e := range h.entries {
		if e.Name == name {
			return true
		}
	}
	own, err := dupCloexec(fd)
	if err != nil {
		return false
	}
	h.add(name, k, own)
	h.syncLocked()
	return true
}

// Fd returns the holder's own fd of that kind (the first one), or -1. It stays the holder's:
// the caller must not close it.
func (h *Holder) Fd(k Kind) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.entries {
		if e.Kind == k {
			return e.Fd
		}
	}
	return -1
}

// Borrow returns a dup of the holder's fd of that kind, which the caller owns and closes; -1
// and an error when there is none.
func (h *Holder) Borrow(k Kind) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return -1, fmt.Errorf("borrow %s: the run's fds are closed", k)
	}
	for _, e := range h.entries {
		if e.Kind == k {
			return dupCloexec(e.Fd)
		}
	}
	return -1, fmt.Errorf("borrow %s: the run has none", k)
}

// Release closes the holder's fd of that kind now (stdin, once the process is gone, so that a
// writer never blocks on it).
func (h *Holder) Release(k Kind) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.entries)
	h.entries = slices.DeleteFunc(h.entries, func(e Entry) bool {
		if e.Kind == k {
			unix.Close(e.Fd)
			return true
		}
		return false
	})
	if len(h.entries) != n {
		h.syncLocked()
	}
}

// Manifest lists every fd the holder owns. It serialises to JSON, the shape a keeper is handed.
func (h *Holder) Manifest() []Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Entry, len(h.entries))
	for i, e := range h.entries {
		e.App, e.Instance, e.Pid, e.StartTick = h.app, h.instance, h.pid, h.tick
		out[i] = e
	}
	return out
}

// Close closes every fd the holder owns; borrowed dups stay open until their borrowers close
// them. It is safe to call more than once.
func (h *Holder) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.store != nil {
		h.store.Drop(h.key)
	}
	for _, e := range h.entries {
		unix.Close(e.Fd)
	}
	h.entries = nil
}

func dupCloexec(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
