package logs

import "golang.org/x/sys/unix"

// pipeSize returns the capacity of the pipe fd, or ok=false when fd is not a
// pipe (a file, a pty), which Pump then reads without resizing or pausing.
func pipeSize(fd int) (size int, ok bool) {
	n, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// setPipeSize asks for a capacity of size bytes and returns what the kernel
// granted (it rounds up to a power of two pages).
func setPipeSize(fd, size int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, size)
}
