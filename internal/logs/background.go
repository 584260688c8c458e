package logs

import (
	"fmt"
	"runtime/debug"
)

// MaxPanics is how many times Go starts a fresh pump after a panic before it gives up.
const MaxPanics = 10

// Go runs Pump on fd in the background and calls done with what Pump would return (or with an
// error once the reader panicked MaxPanics times). The caller keeps owning fd until done.
//
// While the stream is quiet and the pump holds nothing, no goroutine waits for it: the shared
// waiter resumes it on the stream's next byte. 1,000 quiet apps would otherwise keep 2,000
// goroutines parked, about 9 MB of stacks.
//
// A panic in the reader is told to onPanic, and reading goes on with a fresh pump on the same
// fd, so that a bug never leaves an app blocked on a pipe nobody reads.
func Go(fd int, cfg StreamConfig, onPanic func(v any, stack []byte), done func(error)) {
	b := &background{fd: fd, cfg: cfg, onPanic: onPanic, done: done}
	if !b.fresh() {
		return
	}
	go b.run(false)
}

type background struct {
	fd      int
	cfg     StreamConfig
	onPanic func(any, []byte)
	done    func(error)
	p       *pump
	panics  int
}

// fresh starts a new pump; on failure it calls done and says so.
func (b *background) fresh() bool {
	b.p = newPump(b.fd, b.cfg)
	if err := b.p.open(); err != nil {
		b.done(err)
		return false
	}
	return true
}

func (b *background) run(woken bool) {
	defer func() {
		if v := recover(); v != nil {
			b.p.close()
			b.panics++
			if b.onPanic != nil {
				b.onPanic(v, debug.Stack())
			}
			if b.panics >= MaxPanics {
				b.done(fmt.Errorf("log reader panicked %d times; it stopped reading", b.panics))
				return
			}
			if b.fresh() {
				go b.run(false)
			}
		}
	}()
	parked, err := b.p.loop(b.park, woken)
	if parked {
		return
	}
	b.p.close()
	b.done(err)
}

func (b *background) park() bool {
	return b.p.src.park(func() { go b.run(true) })
}
