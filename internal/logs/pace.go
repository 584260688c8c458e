package logs

import "time"

// How Pump sizes a pipe and paces its reads: a busy pipe is enlarged and read after pauses,
// so that a flood costs a few hundred reads; an idle one goes back to the default size.

const (
	// smallPipe is Linux's default pipe capacity, the size Pump assumes for
	// an fd that is not a pipe, and the size it shrinks an idle pipe back to.
	smallPipe = 64 << 10
	// bigPipe is what a busy pipe is enlarged to: 1 MiB is also the default
	// /proc/sys/fs/pipe-max-size, the most an unprivileged user gets.
	bigPipe = 1 << 20
	// pauseFrom is the capacity from which Pump pauses after a short read. A
	// small pipe fills during the pause and blocks the writing app.
	pauseFrom = 256 << 10
	// A pause lets a big pipe gather data so that a flood costs a few hundred
	// reads, not one read per line. It starts at firstPause and adapts so that
	// a read finds a quarter to a half of the pipe: it doubles after a smaller
	// read, up to maxPause, and halves after a bigger one (which is not paused
	// on), down to minPause. Each pause costs the daemon a sleep and a wake,
	// which on a virtual machine whose idle CPU halts is most of a flood's cost:
	// 1M lines took 0.18 s of CPU with 2 ms pauses, 0.08 s adapting. maxPause
	// is also the longest a flood's line waits for the file; an app that writes
	// slowly keeps a small pipe and is never paused on.
	firstPause = 2 * time.Millisecond
	minPause   = time.Millisecond
	maxPause   = 10 * time.Millisecond
	// minWindow is the first read size; the window doubles while reads fill
	// it, so that an idle stream holds little memory.
	minWindow = 16 << 10
	// rateReads reads within rateSpan (2,500 a second) make a small pipe
	// busy. An app logging a thousand lines a second, one write each, stays
	// below and keeps its small pipe.
	rateReads = 250
	rateSpan  = 100 * time.Millisecond
)

// idleAfter is how long an enlarged pipe may go without a busy read before it
// is shrunk, which returns its pages to the per-user budget. A variable for
// tests.
var idleAfter = 30 * time.Second

// adapt sizes the pipe and the read window after a read of n bytes, and
// pauses when that pays.
func (p *pump) adapt(n int) {
	if n >= p.window && p.window < p.capacity {
		p.window = min(2*p.window, p.capacity)
	}
	if !p.isPipe {
		return
	}
	now := time.Now()
	if p.capacity < pauseFrom {
		if now.After(p.noGrowUntil) && p.busy(n, now) {
			p.grow(now)
		}
		return
	}
	if n >= minWindow {
		// Still a stream worth a big pipe: at least 2 MB/s with the longest pause.
		p.lastBusy = now
	}
	if n >= p.capacity/2 {
		// The pipe is filling faster than a pause would allow for.
		p.pauseFor = max(p.pauseFor/2, minPause)
		return
	}
	if n < p.capacity/4 {
		p.pauseFor = min(2*p.pauseFor, maxPause)
	}
	if p.cfg.stats != nil {
		p.cfg.stats.pauses.Add(1)
	}
	nap(p.pauseFor)
}

// busy reports whether a small pipe has earned a bigger one. A pipe is busy
// when a read finds it at least half full (the reader fell behind; "full" is
// not a byte count: a 64 KiB pipe fed 67-byte writes is full at 65,392 bytes,
// as a write that does not fit in a page's tail takes a new page), or when
// reads come so often that the reader, woken for nearly every write, spends
// its CPU on syscalls although it keeps up: then the pipe never fills, and
// only a big pipe and a pause can batch the lines.
func (p *pump) busy(n int, now time.Time) bool {
	if p.window == p.capacity && n >= p.capacity/2 {
		return true
	}
	if now.Sub(p.rateStart) > rateSpan {
		p.rateStart, p.rateReads = now, 0
	}
	p.rateReads++
	return p.rateReads >= rateReads
}

func (p *pump) grow(now time.Time) {
	got, err := setPipeSize(p.fd, bigPipe)
	if err != nil || got <= p.capacity {
		// EPERM: the user's pipe budget is spent, or pipe-max-size is
		// lower. Asking on every read would only cost syscalls.
		p.noGrowUntil = now.Add(idleAfter)
		return
	}
	p.capacity, p.window, p.lastBusy, p.grown = got, got, now, true
	p.pauseFor = firstPause
	if p.peek != nil {
		p.peek.resize(got)
	}
	if p.cfg.stats != nil {
		p.cfg.stats.grows.Add(1)
	}
}

// shrink gives an enlarged pipe that has gone quiet back its default size and
// drops the big buffers. It fails harmlessly (EBUSY) when the pipe holds more
// than the smaller size; then it is tried again after another idleAfter.
func (p *pump) shrink() {
	p.lastBusy = time.Now()
	got, err := setPipeSize(p.fd, smallPipe)
	if err != nil {
		return
	}
	p.capacity, p.window, p.grown = got, min(minWindow, got), false
	if p.peek != nil {
		p.peek.resize(got)
	}
	nb := make([]byte, p.maxLine+p.window)
	copy(nb, p.buf[:p.carry])
	p.buf, p.out = nb, nil
	if p.cfg.stats != nil {
		p.cfg.stats.shrinks.Add(1)
	}
}
