package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Version is the protocol this tend speaks. A peer of another version is refused: the meaning of
// the fds is in the records, and records of an unknown shape are not guessed at.
const Version = 1

// MaxFds is how many fds one message may carry: the kernel refuses more than SCM_MAX_FD (253)
// in one sendmsg with EINVAL.
const MaxFds = 253

// maxMsg bounds one message's JSON. A record is a few hundred bytes; the keeper's state goes to
// a daemon one record a message.
const maxMsg = 128 << 10

// ErrVersion is a peer that speaks another protocol version.
var ErrVersion = errors.New("keeper protocol version mismatch")

// Operations.
const (
	opHello   = "hello"   // daemon → keeper: its version; keeper → daemon: its own, then its state
	opRecord  = "record"  // keeper → daemon: one kept record with its fds
	opEnd     = "end"     // keeper → daemon: the last of the state
	opPut     = "put"     // daemon → keeper: keep this record (replaces one of the same key)
	opDrop    = "drop"    // daemon → keeper: close the record's fds and forget it
	opServing = "serving" // daemon → keeper: the control socket answers
	opBye     = "bye"     // daemon → keeper: an ordered stop; exit once the daemon has
	opExit    = "exit"    // keeper → daemon: processes it reaped
	opUpgrade = "upgrade" // daemon → keeper: re-execute yourself, keeping every record
	opReplace = "replace" // daemon → keeper: I exit now; start the next daemon from this binary
)

// msg is one message: JSON, with len(Names) fds riding in the same sendmsg.
type msg struct {
	Op      string            `json:"op"`
	Version int               `json:"version,omitempty"`
	Pid     int               `json:"pid,omitempty"`   // hello: the keeper's pid
	Build   string            `json:"build,omitempty"` // hello: the keeper's tend version
	Key     string            `json:"key,omitempty"`
	Info    json.RawMessage   `json:"info,omitempty"`
	Names   []json.RawMessage `json:"names,omitempty"` // one per fd: what the daemon says it is
	Records int               `json:"records,omitempty"`
	Exits   []Exit            `json:"exits,omitempty"`
	Exe     string            `json:"exe,omitempty"`
}

// Exit is how a process the keeper reaped ended.
type Exit struct {
	Pid    int   `json:"pid"`
	Code   int   `json:"code"`             // exit code, or -1 when killed by a signal
	Signal int   `json:"signal,omitempty"` // the signal that killed it
	At     int64 `json:"at"`               // unix nanoseconds
}

// send writes m with fds attached. The fds stay the caller's: the peer gets copies.
func send(c *net.UnixConn, m msg, fds []int) error {
	if len(fds) > MaxFds {
		return fmt.Errorf("keeper: %d fds in one record; at most %d", len(fds), MaxFds)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > maxMsg {
		return fmt.Errorf("keeper: a %s message of %d bytes is over %d", m.Op, len(b), maxMsg)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.WriteMsgUnix(b, oob, nil)
	if err != nil {
		return fmt.Errorf("keeper: send %s: %w", m.Op, err)
	}
	if n != len(b) || oobn != len(oob) {
		return fmt.Errorf("keeper: send %s: short write", m.Op)
	}
	return nil
}

// recv reads one message and its fds (CLOEXEC, the caller's from now on). A message cut short
// (MSG_TRUNC), fds cut short (MSG_CTRUNC) or a count that does not match the names is refused,
// and whatever fds came are closed. errEOF is a peer that has gone.
func recv(c *net.UnixConn, buf, oob []byte) (msg, []int, error) {
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	var fds []int
	if oobn > 0 {
		fds = rights(oob[:oobn])
	}
	fail := func(err error) (msg, []int, error) {
		closeAll(fds)
		return msg{}, nil, err
	}
	switch {
	case errors.Is(err, io.EOF):
		return fail(errEOF)
	case err != nil:
		return fail(err)
	case n == 0:
		return fail(errEOF)
	case flags&unix.MSG_TRUNC != 0:
		return fail(fmt.Errorf("keeper: a message over %d bytes (MSG_TRUNC)", len(buf)))
	case flags&unix.MSG_CTRUNC != 0:
		return fail(fmt.Errorf("keeper: fds truncated (MSG_CTRUNC) after %d", len(fds)))
	}
	var m msg
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return fail(fmt.Errorf("keeper: bad message: %w", err))
	}
	carries := m.Op == opPut || m.Op == opRecord
	if carries && len(m.Names) != len(fds) {
		return fail(fmt.Errorf("keeper: record %q names %d fds and %d came", m.Key, len(m.Names), len(fds)))
	}
	if !carries && len(fds) > 0 {
		return fail(fmt.Errorf("keeper: %d fds with a %s message", len(fds), m.Op))
	}
	return m, fds, nil
}

var errEOF = errors.New("keeper: the peer has gone")

// recvBuffers sizes a receiver for the largest message and a full batch of fds.
func recvBuffers() (buf, oob []byte) {
	return make([]byte, maxMsg+1), make([]byte, unix.CmsgSpace(MaxFds*4))
}

// rights returns the fds of the SCM_RIGHTS messages in oob, made CLOEXEC.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var out []int
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
		}
		out = append(out, fds...)
	}
	return out
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// pair returns a connected SOCK_SEQPACKET pair: the keeper's end, and the daemon's, which the
// keeper gives its daemon as an inherited fd. Message boundaries are the kernel's, so a message
// and the fds riding on it always arrive together; and with no socket file, no other process can
// reach the keeper at all.
func pair() (keeperEnd *net.UnixConn, daemonEnd int, err error) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, -1, fmt.Errorf("keeper socketpair: %w", err)
	}
	// A whole state batch must fit the queue the peer has not read yet.
	for _, fd := range sp {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4*maxMsg)
	}
	k, err := fileConn(sp[0], "keeper")
	if err != nil {
		unix.Close(sp[1])
		return nil, -1, err
	}
	return k, sp[1], nil
}

// fileConn wraps fd (taken over) as a UnixConn.
func fileConn(fd int, name string) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("keeper channel: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("keeper channel: not a unix socket")
	}
	return uc, nil
}

// checkPeer refuses a peer that runs as another user than this process: the fds of apps are for
// their own user's tend only. (The channel is a socketpair the keeper made, so no stranger can
// reach it; the check keeps that true should it ever change.)
func checkPeer(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("keeper: peer credentials: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("keeper: refused a peer of uid %d (pid %d): this tend runs as uid %d", cred.Uid, cred.Pid, os.Getuid())
	}
	return nil
}
