package wire

import (
	"net"

	"golang.org/x/sys/unix"
)

// PeerUID is the user id of the process at the other end of a unix socket connection, as the
// kernel recorded it when the connection was made (SO_PEERCRED): it cannot be forged by the peer.
func PeerUID(c net.Conn) (uid int, ok bool) {
	uc, isUnix := c.(*net.UnixConn)
	if !isUnix {
		return 0, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false
	}
	return int(cred.Uid), true
}
