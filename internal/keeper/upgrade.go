package keeper

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/home"
)

// EnvResume names the memfd from which a keeper that re-executed itself reads what it held.
const EnvResume = "TEND_KEEPER_RESUME"

// resumeVersion is the shape of what a keeper hands the binary it re-executes.
const resumeVersion = 1

type resumeState struct {
	Version int            `json:"version"`
	Argv    []string       `json:"argv"` // the daemon's, its first word replaced by the new binary
	Lock    int            `json:"lock"`
	Daemon  int            `json:"daemon"`
	Conn    int            `json:"conn"` // the daemon's channel, -1 if none
	Served  bool           `json:"served"`
	Records []resumeRecord `json:"records"`
	Exits   []Exit         `json:"exits"`
}

type resumeRecord struct {
	Key   string            `json:"key"`
	Info  json.RawMessage   `json:"info"`
	Names []json.RawMessage `json:"names"`
	Fds   []int             `json:"fds"`
}

// reexec replaces the keeper's program with the binary the daemon named (tend update), keeping
// its pid, its children, every fd it holds and the daemon's channel: they are passed through
// exec (CLOEXEC cleared) and listed in a memfd. On failure the keeper goes on as it was.
func (k *keeper) reexec(lock *os.File, daemon int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	exe := k.upgrade
	k.upgrade = ""
	defer func() {
		// Reached only when the exec failed: the daemon's channel is read again.
		if k.upgradeWait != nil {
			close(k.upgradeWait)
			k.upgradeWait = nil
		}
	}()
	if exe == "" {
		return
	}
	st := resumeState{Version: resumeVersion, Argv: k.o.Argv, Lock: int(lock.Fd()), Daemon: daemon, Conn: -1, Served: isClosed(k.served), Exits: k.exits}
	var inherit []int
	if k.conn != nil {
		if raw, err := k.conn.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				if d, err := unix.Dup(int(fd)); err == nil { // dup(2) leaves CLOEXEC clear
					st.Conn = d
				}
			})
		}
	}
	inherit = append(inherit, st.Lock)
	for key, r := range k.records {
		st.Records = append(st.Records, resumeRecord{Key: key, Info: r.info, Names: r.names, Fds: r.fds})
		inherit = append(inherit, r.fds...)
	}
	fail := func(err error) {
		for _, fd := range inherit {
			unix.CloseOnExec(fd)
		}
		if st.Conn >= 0 {
			unix.Close(st.Conn)
		}
		k.log.Error("keeper: upgrade failed; the keeper goes on as it was", "exe", exe, "err", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		fail(err)
		return
	}
	mfd, err := unix.MemfdCreate("tend-keeper", 0)
	if err != nil {
		fail(fmt.Errorf("memfd: %w", err))
		return
	}
	defer unix.Close(mfd)
	if _, err := unix.Write(mfd, b); err != nil {
		fail(fmt.Errorf("memfd: %w", err))
		return
	}
	for _, fd := range inherit {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			fail(fmt.Errorf("keep fd %d: %w", fd, err))
			return
		}
	}
	env := append(slices.DeleteFunc(os.Environ(), func(s string) bool {
		return strings.HasPrefix(s, EnvResume+"=")
	}), EnvResume+"="+strconv.Itoa(mfd))
	// Not this process's own arguments: a foreground keeper's are a whole `tend --no-daemon
	// start …`, which the new binary must not run again. The daemon's flags are in the state.
	argv := []string{exe, "daemon"}
	k.log.Info("keeper: re-executing itself", "exe", exe, "records", len(st.Records))
	fail(syscall.Exec(exe, argv, env)) // returns only on failure
}

// Resume goes on as the keeper that re-executed itself into this process (EnvResume is set):
// it takes back what that one held and serves the same daemon.
func Resume(o Options) error {
	sigs := notifySignals()
	v := os.Getenv(EnvResume)
	os.Unsetenv(EnvResume)
	mfd, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("keeper: %s=%q is not an fd", EnvResume, v)
	}
	f := os.NewFile(uintptr(mfd), "keeper-resume")
	_, _ = f.Seek(0, io.SeekStart)
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("keeper: read what the previous keeper held: %w", err)
	}
	var st resumeState
	if err := json.Unmarshal(b, &st); err != nil || st.Version != resumeVersion {
		return fmt.Errorf("keeper: what the previous keeper held is of an unknown shape (version %d, %v); its apps are no longer kept", st.Version, err)
	}
	if len(st.Argv) > 1 && len(o.Argv) > 0 {
		o.Argv = append([]string{o.Argv[0]}, st.Argv[1:]...) // this binary, the daemon's flags
	}
	k := newKeeper(o)
	k.exits = st.Exits
	for _, r := range st.Records {
		for _, fd := range r.Fds {
			unix.CloseOnExec(fd)
		}
		k.records[r.Key] = &record{info: r.Info, names: r.Names, fds: r.Fds}
	}
	unix.CloseOnExec(st.Lock)
	lock := os.NewFile(uintptr(st.Lock), "keeper.lock")
	defer lock.Close()
	defer os.Remove(home.At(o.Home).KeeperPid)
	if os.Getpid() != 1 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	if st.Served {
		k.serveMu.Do(func() { close(k.served) })
	}
	n := len(k.records) // before serve may change them
	k.daemonDone = make(chan struct{})
	if st.Conn >= 0 {
		unix.CloseOnExec(st.Conn)
		conn, err := fileConn(st.Conn, "keeper")
		if err != nil {
			return err
		}
		k.mu.Lock()
		k.conn = conn
		k.flushLocked() // exits reaped before the exec
		k.mu.Unlock()
		k.daemonDone = k.serveConn(conn)
	} else {
		close(k.daemonDone)
	}
	k.log.Info("keeper: re-executed", "pid", os.Getpid(), "version", o.Version, "records", n)
	return k.run(lock, st.Daemon, sigs)
}
