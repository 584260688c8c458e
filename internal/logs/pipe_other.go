//go:build !linux

package logs

import (
	"errors"
	"time"
)

func pipeSize(fd int) (int, bool) { return 0, false }

func setPipeSize(fd, size int) (int, error) {
	return 0, errors.New("pipe resizing is not supported on this system")
}

func nap(d time.Duration) { time.Sleep(d) }

func drained(fd int) bool { return false }
