package logs

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// peeker reads an app's pipe without consuming it: tee(2) copies what the pipe holds into a
// private pipe, the pump reads that, and only what it has written to the files is then consumed
// from the app's pipe. A daemon killed at any moment thus leaves every line it has not written
// in the app's pipe, for the next daemon (which the keeper hands the same pipe): none is lost or
// torn. Killed between a write and its consume, the next daemon writes those lines again.
//
// Peeking costs the app its overlap with the pump (peeked bytes hold their room in the pipe
// until written), which halves a flood's throughput: a pump whose pipe was enlarged for a flood
// reads as before, unless it took the pipe over lately (StreamConfig.Resumed), when a daemon
// killed while it drains the backlog must lose nothing.
type peeker struct {
	r, w  int       // the private pipe
	until time.Time // peek even through a flood until then
}

// newPeeker returns a peeker for a pipe of that capacity, or nil when the kernel gives no pipe
// (then the pump reads as before, consuming what it reads).
func newPeeker(capacity int, resumed bool) *peeker {
	var fds [2]int
	if unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK) != nil {
		return nil
	}
	pk := &peeker{r: fds[0], w: fds[1]}
	if resumed {
		pk.until = time.Now().Add(peekFor)
	}
	pk.resize(capacity)
	return pk
}

// resize makes the private pipe hold what one read of the app's pipe may take.
func (pk *peeker) resize(capacity int) { _, _ = setPipeSize(pk.w, capacity) }

func (pk *peeker) close() {
	unix.Close(pk.r)
	unix.Close(pk.w)
}

// peek copies up to len(b) bytes from the head of the pipe src reads into b, consuming nothing.
func (s *source) peek(pk *peeker, b []byte) (int, error) {
	for {
		n, err := unix.Tee(s.fd, pk.w, len(b), unix.SPLICE_F_NONBLOCK)
		if err == unix.EAGAIN && s.w != nil {
			if err := s.w.wait(s.fd, s.ch, s.deadline); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil || n == 0 {
			return 0, err // n == 0: no data and no writer, EOF
		}
		got := 0
		for got < int(n) {
			m, err := unix.Read(pk.r, b[got:n])
			if err != nil {
				return got, err
			}
			got += m
		}
		return got, nil
	}
}

// peekFor is how long a pump peeks a pipe it took over even through a flood: daemons that die
// in a row die within it (the keeper restarts ten at once), each while it drains the backlog.
const peekFor = 10 * time.Second

var devNull = sync.OnceValues(func() (int, error) {
	return unix.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0)
})

// consume drops n bytes from the head of the pipe src reads: bytes the pump has written.
func (s *source) consume(n int) error {
	null, nullErr := devNull()
	var scratch []byte
	for n > 0 {
		var m int
		var err error
		if nullErr == nil {
			var m64 int64
			m64, err = unix.Splice(s.fd, nil, null, nil, n, unix.SPLICE_F_NONBLOCK)
			m = int(m64)
			if err == unix.EINVAL {
				nullErr = err // no splice to /dev/null here: read into scratch instead
				continue
			}
		} else {
			if scratch == nil {
				scratch = make([]byte, min(n, 64<<10))
			}
			m, err = unix.Read(s.fd, scratch[:min(n, len(scratch))])
		}
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case m == 0:
			return nil
		}
		n -= m
	}
	return nil
}
