// Package notify serves systemd's readiness protocol (sd_notify) to apps: one datagram socket
// where a process says "READY=1", known by the kernel's credentials rather than by what it says.
package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Listen opens the readiness socket at path (replacing a stale one), created under umask, with
// the sender's credentials passed along with each datagram.
func Listen(path string, umask int) (*net.UnixConn, error) {
	os.Remove(path)
	old := unix.Umask(umask)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	raw, err := c.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("readiness socket %s: %w", path, err)
	}
	return c, nil
}

// Serve reads readiness datagrams ("READY=1", one KEY=VALUE per line) until conn is closed,
// and calls ready with the sender's pid for each READY=1. Whether that pid counts (systemd's
// NotifyAccess=main: only an instance's main process) is the caller's to decide.
func Serve(conn *net.UnixConn, ready func(pid int), log *slog.Logger) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic in readiness socket", "panic", fmt.Sprint(p))
		}
	}()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pid := senderPid(oob[:oobn])
		if pid <= 0 {
			continue
		}
		if saysReady(buf[:n]) {
			ready(pid)
		}
	}
}

func senderPid(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if cred, err := unix.ParseUnixCredentials(&m); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}

// saysReady reports whether a datagram holds the line READY=1 (one KEY=VALUE a line).
func saysReady(datagram []byte) bool {
	for _, line := range strings.Split(string(datagram), "\n") {
		if strings.TrimSpace(line) == "READY=1" {
			return true
		}
	}
	return false
}
