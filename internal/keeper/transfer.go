// Package keeper is the hand-over of a daemon's runs to another process: today, the protocol
// that carries holders' fds and their manifest over a unix socket (SCM_RIGHTS), the way the
// daemon and the keeper that outlives it (issue 9) are to pass them to each other. A versioned
// header says what follows; fds travel in batches within the kernel's limit per message; a
// truncated or short transfer, a manifest that does not match the fds, an unknown version or a
// peer of another user is refused, never guessed at, and whatever was received is then closed.
package keeper

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/proc"
)

// Version is the protocol this tend speaks. A peer of another version is refused: the fds'
// meaning is in the manifest, and a manifest of an unknown shape is not guessed at.
const Version = 1

// maxFds is how many fds one sendmsg may carry: the kernel refuses more than SCM_MAX_FD (253)
// with EINVAL.
const maxFds = 253

// recvFds sizes the receiver's control buffer: one full batch (a test makes it smaller to
// provoke MSG_CTRUNC).
var recvFds = maxFds

// maxHeader bounds the manifest a receiver accepts (about 200 bytes an fd).
const maxHeader = 64 << 20

// ErrVersion is a peer that speaks another protocol version.
var ErrVersion = errors.New("keeper protocol version mismatch")

// header is what precedes the fds: their manifest, in the order they follow.
type header struct {
	Version int          `json:"version"`
	Entries []proc.Entry `json:"entries"`
}

// Send writes the manifest and then its fds (each entry's Fd, in order) to conn. The fds stay
// the caller's: the receiver gets its own copies.
func Send(conn *net.UnixConn, entries []proc.Entry) error {
	b, err := json.Marshal(header{Version: Version, Entries: entries})
	if err != nil {
		return err
	}
	if len(b) > maxHeader {
		return fmt.Errorf("send %d fds: the manifest is over %d bytes", len(entries), maxHeader)
	}
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	if _, err := conn.Write(append(msg, b...)); err != nil {
		return fmt.Errorf("send manifest: %w", err)
	}
	for i := 0; i < len(entries); i += maxFds {
		batch := entries[i:min(i+maxFds, len(entries))]
		fds := make([]int, len(batch))
		for j, e := range batch {
			fds[j] = e.Fd
		}
		// One byte a batch, saying how many fds ride on it: the receiver checks it got them all.
		n, oobn, err := conn.WriteMsgUnix([]byte{byte(len(batch))}, unix.UnixRights(fds...), nil)
		if err != nil {
			return fmt.Errorf("send fds %d to %d: %w", i, i+len(batch), err)
		}
		if n != 1 || oobn != len(unix.UnixRights(fds...)) {
			return fmt.Errorf("send fds %d to %d: short write", i, i+len(batch))
		}
	}
	return nil
}

// Receive reads a manifest and its fds from conn. The entries come back with Fd set to the
// received fds (CLOEXEC), which the caller then owns. On any error, every fd received so far is
// closed.
func Receive(conn *net.UnixConn) ([]proc.Entry, error) {
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, fmt.Errorf("receive manifest: %w", err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxHeader {
		return nil, fmt.Errorf("receive manifest: %d bytes is over the limit of %d", n, maxHeader)
	}
	// Exactly the manifest's bytes: a buffered read could take the first batch's byte, and the
	// fds riding on it would be lost with it.
	b := make([]byte, n)
	if _, err := io.ReadFull(conn, b); err != nil {
		return nil, fmt.Errorf("receive manifest: %w", err)
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("receive manifest: %w", err)
	}
	if h.Version != Version {
		return nil, fmt.Errorf("%w: the peer speaks version %d and this tend %d; stop the older one (tend kill) rather than let it guess", ErrVersion, h.Version, Version)
	}
	var got []int
	fail := func(err error) ([]proc.Entry, error) {
		for _, fd := range got {
			unix.Close(fd)
		}
		return nil, err
	}
	oob := make([]byte, unix.CmsgSpace(recvFds*4))
	for len(got) < len(h.Entries) {
		var one [1]byte
		k, oobn, flags, _, err := conn.ReadMsgUnix(one[:], oob)
		if oobn > 0 {
			fds, perr := rights(oob[:oobn])
			got = append(got, fds...)
			if perr != nil {
				return fail(fmt.Errorf("receive fds: %w", perr))
			}
		}
		switch {
		case err != nil:
			return fail(fmt.Errorf("receive fds: %w after %d of %d", err, len(got), len(h.Entries)))
		case k == 0:
			return fail(fmt.Errorf("receive fds: the peer closed after %d of %d", len(got), len(h.Entries)))
		case flags&unix.MSG_CTRUNC != 0:
			return fail(fmt.Errorf("receive fds: truncated (MSG_CTRUNC) after %d of %d", len(got), len(h.Entries)))
		}
	}
	if len(got) != len(h.Entries) {
		return fail(fmt.Errorf("receive fds: the manifest lists %d and %d came", len(h.Entries), len(got)))
	}
	for i := range h.Entries {
		h.Entries[i].Fd = got[i]
	}
	return h.Entries, nil
}

// rights returns the fds of SCM_RIGHTS messages in oob, made CLOEXEC.
func rights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
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
	return out, nil
}

// CheckPeer refuses a peer that runs as another user than this process: the fds of apps are
// for their own user's tend only.
func CheckPeer(conn *net.UnixConn) error {
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
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("refused a peer of uid %d (pid %d): this tend runs as uid %d", cred.Uid, cred.Pid, os.Getuid())
	}
	return nil
}
