package main

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// listenBacklog asks for the largest accept queue: listen() silently caps it at
// net.core.somaxconn, and a benchmark that opens connections faster than a worker accepts them
// should see the kernel's limit, not ours.
const listenBacklog = 65535

var loopback = [4]byte{127, 0, 0, 1}

// listenAll creates n listening sockets on 127.0.0.1:port that share the port through
// SO_REUSEPORT, one per worker, and returns their fds and the port (picked by the kernel when
// port is 0). On error it closes whatever it created.
//
// The sockets are made with unix.Socket, not net.Listen: a net.Listener's File() dup is
// blocking, and os.StartProcess would make it blocking anyway (see startWorkers).
func listenAll(port, n int) (fds []int, bound int, err error) {
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			fds = nil
		}
	}()
	if port != 0 {
		// A SO_REUSEPORT bind succeeds beside any listener of the same user that has
		// SO_REUSEPORT too (an orphan of an earlier run, say), and the two would then share the
		// connections without a word. A bind without it fails on any listener, so try that first.
		if err := checkPortFree(port); err != nil {
			return nil, 0, err
		}
	}
	// With port 0 the first bind picks the port. The kernel's search for a free port does not
	// count joining another SO_REUSEPORT group as free, so it cannot land beside a stranger.
	for i := 0; i < n; i++ {
		fd, err := listenReusePort(port)
		if err != nil {
			return fds, 0, fmt.Errorf("listen on 127.0.0.1:%d (socket %d of %d): %w", port, i+1, n, err)
		}
		fds = append(fds, fd)
		if port == 0 {
			sa, err := unix.Getsockname(fd)
			if err != nil {
				return fds, 0, fmt.Errorf("getsockname: %w", err)
			}
			port = sa.(*unix.SockaddrInet4).Port
		}
	}
	return fds, port, nil
}

// listenReusePort returns a non-blocking, close-on-exec TCP socket listening on 127.0.0.1:port
// with SO_REUSEADDR (a restart does not wait for the last run's TIME_WAIT connections) and
// SO_REUSEPORT (each worker gets its own socket and accept queue on the same port).
func listenReusePort(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: loopback}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen: %w", err)
	}
	return fd, nil
}

// checkPortFree binds 127.0.0.1:port without SO_REUSEPORT and lets go at once. SO_REUSEADDR
// stays on so that TIME_WAIT connections left by an earlier run do not count as "in use".
func checkPortFree(port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("setsockopt: %w", err)
	}
	err = unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: loopback})
	if errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("127.0.0.1:%d is already in use (is an earlier run still up?)", port)
	}
	if err != nil {
		return fmt.Errorf("bind 127.0.0.1:%d: %w", port, err)
	}
	return nil
}
