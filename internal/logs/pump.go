package logs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// DefaultMaxLine is the longest line, in bytes without its '\n', that Pump
// writes whole; longer lines are split (see the package comment).
const DefaultMaxLine = 64 << 10

// splitMarker ends every piece of a split line but the last.
const splitMarker = " [tend: line split]"

// partialWait is how long a line without its newline waits for the rest before the part that
// came is written as a line of its own (process.stdout.write('loading...') then silence). A
// variable for tests.
var partialWait = time.Second

// StreamConfig says where Pump writes the lines of one stream.
type StreamConfig struct {
	// Files are where each line goes (e.g. the -out file and the combined
	// -l file); nil entries are ignored, and a file listed twice gets each
	// line once.
	Files []*File
	// Echo, if set, receives the lines too (foreground mode); each chunk of
	// whole lines is written in one Write call.
	Echo io.Writer
	// Date, if set, prefixes each line with "<date>: ", PM2's separator.
	Date *DateFormat
	// JSON, if set, writes each line as a JSON object (PM2's log_type json) instead of the line
	// with its date prefix; see JSONFields.
	JSON *JSONFields
	// Location is the zone of the date prefix; nil means time.Local.
	Location *time.Location
	// MaxLine is the longest line written whole; 0 means DefaultMaxLine.
	MaxLine int
	// Now returns the time for the prefix; nil means time.Now.
	Now func() time.Time
	// Resumed says the pipe was read by a daemon that died (the keeper handed it over): it is
	// peeked (see peeker) even through a flood for a while, so that a daemon killed while it
	// drains the backlog loses and tears no line.
	Resumed bool
	// OnError, if set, is told about a write error as soon as it happens, so
	// that a full disk is reported while the app runs rather than at its
	// exit. It is called once when a destination starts failing and again
	// only after that destination has recovered. It runs on Pump's goroutine
	// and must not block.
	OnError func(error)
	// OnDrop, if set, is told of every write to a file that failed: how many lines were not
	// written. When writing works again, the file first gets a line saying how many were lost
	// (on a disk that is nearly full, several such lines, each counting what came since the
	// last), and once the app's lines are written again OnResume, if set, is told the total.
	OnDrop   func(lines int, err error)
	OnResume func(lost int)
	// Lines, if set, counts the lines read from the app (written, or dropped and counted).
	Lines *atomic.Int64

	// stats, when set by a test, counts what Pump did.
	stats *pumpStats
}

type pumpStats struct {
	reads   atomic.Int64 // read(2) calls, EINTR included
	bytes   atomic.Int64
	pauses  atomic.Int64
	grows   atomic.Int64
	shrinks atomic.Int64
}

// Pump reads fd until EOF (or a read error other than EINTR/EAGAIN), frames
// lines and writes them to every file in cfg.Files and to cfg.Echo. A final
// partial line without '\n' at EOF is written with a '\n' added. Pump does not
// close fd; the caller owns it.
//
// A failed write does not stop Pump: it keeps draining the pipe so that the app
// never blocks on a full one, drops the lines that destination could not take,
// and returns the first write error at EOF (nil when every write succeeded).
//
// Close the write ends of the pipe to stop Pump.
func Pump(fd int, cfg StreamConfig) error {
	p := newPump(fd, cfg)
	if err := p.open(); err != nil {
		return err
	}
	defer p.close()
	_, err := p.loop(nil, false)
	return err
}

type pump struct {
	fd      int
	cfg     StreamConfig
	files   []*File
	maxLine int
	loc     *time.Location
	now     func() time.Time

	isPipe   bool
	capacity int       // the pipe's capacity, or smallPipe when fd is not a pipe
	window   int       // how much one read asks for; grows up to capacity
	grown    bool      // Pump enlarged the pipe, so it shrinks it back when idle
	lastBusy time.Time // of the last read that justified a big pipe
	lastData time.Time // of the last read that brought data

	noGrowUntil time.Time // the kernel refused to enlarge: wait before asking again

	rateStart time.Time // start of the span in which rateReads reads came
	rateReads int

	buf   []byte // carry (a partial line) at buf[:carry], then room to read
	carry int
	out   []byte // lines with prefixes and markers, when they must be built

	prefix    []byte // "<date>: " for the current chunk
	prefixSec int64
	prefixSet bool

	failing  []bool  // per destination (files, then Echo)
	lost     []int   // per file: lines not written since it began failing, or since the last marker
	episode  []int   // per file: lines lost in this episode that a marker already told of
	errs     []error // per file: what it failed with last
	firstErr error

	src  *source
	peek *peeker // reads the pipe without consuming it; nil: reads consume

	pauseFor time.Duration // the next pause (see firstPause)
}

func newPump(fd int, cfg StreamConfig) *pump {
	p := &pump{fd: fd, cfg: cfg, maxLine: cfg.MaxLine, loc: cfg.Location, now: cfg.Now}
	if p.maxLine <= 0 {
		p.maxLine = DefaultMaxLine
	}
	if p.loc == nil {
		p.loc = time.Local
	}
	if p.now == nil {
		p.now = time.Now
	}
	for _, f := range cfg.Files {
		// The same file twice (-o and -l naming one path) gets each line once.
		if f != nil && !slices.Contains(p.files, f) {
			p.files = append(p.files, f)
		}
	}
	p.failing = make([]bool, len(p.files)+1)
	p.lost = make([]int, len(p.files))
	p.episode = make([]int, len(p.files))
	p.capacity, p.isPipe = pipeSize(fd)
	if !p.isPipe {
		p.capacity = smallPipe
	}
	p.window = min(minWindow, p.capacity)
	p.lastBusy = time.Now()
	p.pauseFor = firstPause
	return p
}

// open readies the pump's source: an empty pipe parks the pump in the shared waiter instead of
// pinning an OS thread in read(2) (200 apps would mean 400 threads); a read that finds data
// costs one syscall.
func (p *pump) open() error {
	src, err := p.pollable()
	if err != nil {
		return err
	}
	p.src = src
	if p.isPipe && src.w != nil {
		p.peek = newPeeker(p.capacity, p.cfg.Resumed)
	}
	return nil
}

func (p *pump) close() {
	if p.peek != nil {
		p.peek.close()
		p.peek = nil
	}
	if p.src != nil {
		p.src.close()
		p.src = nil
	}
}

// loop reads until the stream ends and returns what Pump returns. With park set, a pump that
// holds nothing (no buffer, no deadline) calls park instead of waiting; when park arranged for
// the pump to be resumed, loop returns at once with parked set, and the pump is not touched
// again by this call. woken says the pump was resumed because its source is readable.
func (p *pump) loop(park func() bool, woken bool) (parked bool, err error) {
	src := p.src
	for ; ; woken = false {
		if woken && p.buf == nil && p.isPipe && drained(src.fd) {
			p.finish()
			return false, p.firstErr
		}
		d := p.deadline()
		src.setDeadline(d)
		if p.buf == nil && !woken {
			if park != nil && d.IsZero() && park() {
				return true, nil
			}
			// No memory held while the app is quiet: a thousand silent apps would otherwise
			// hold 80 KiB a stream each. The buffer comes when data does.
			if err := src.ready(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				p.finish()
				return false, errors.Join(os.NewSyscallError("read", err), p.firstErr)
			} else if err != nil {
				p.idle()
				continue
			}
		}
		p.ensureRoom()
		var n int
		peeking := p.peek != nil && (!p.grown || time.Now().Before(p.peek.until))
		if peeking {
			n, err = src.peek(p.peek, p.buf[p.carry:p.carry+p.window])
		} else {
			n, err = src.read(p.buf[p.carry : p.carry+p.window])
		}
		if p.cfg.stats != nil {
			p.cfg.stats.reads.Add(1)
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.idle()
			continue
		case err == unix.EINTR:
			continue
		case err != nil:
			p.finish()
			return false, errors.Join(os.NewSyscallError("read", err), p.firstErr)
		case n == 0:
			p.finish()
			return false, p.firstErr
		}
		if p.cfg.stats != nil {
			p.cfg.stats.bytes.Add(int64(n))
		}
		p.lastData = time.Now()
		before := p.carry
		p.frame(p.buf[:p.carry+n])
		if peeking {
			if err := src.consume(p.consumable(before, n)); err != nil {
				p.finish()
				return false, errors.Join(os.NewSyscallError("splice", err), p.firstErr)
			}
		}
		p.adapt(n)
	}
}

// idle is what a pump does when its deadline passed with no data: it ends a partial line whose
// rest has not come, shrinks an enlarged pipe, and lets go of its buffers.
func (p *pump) idle() {
	now := time.Now()
	if p.carry > 0 && !now.Before(p.lastData.Add(partialWait)) {
		p.finish() // the rest of the line has not come: the part that did is a line
	}
	if p.grown && !now.Before(p.lastBusy.Add(idleAfter)) {
		p.shrink()
	}
	if p.carry == 0 && p.buf != nil && !now.Before(p.lastData.Add(releaseAfter)) {
		p.buf, p.out = nil, nil
	}
}

// releaseAfter is how long a pump keeps its buffers once its app is quiet.
var releaseAfter = 5 * time.Second

// deadline is when the pump stops waiting for data: an enlarged pipe that stays quiet for
// idleAfter goes back to the small size, a partial line waits partialWait for its end, and the
// buffers of a quiet app are let go after releaseAfter.
func (p *pump) deadline() time.Time {
	var d time.Time
	if p.grown {
		d = p.lastBusy.Add(idleAfter)
	}
	if p.buf != nil && p.carry == 0 {
		if rd := p.lastData.Add(releaseAfter); d.IsZero() || rd.Before(d) {
			d = rd
		}
	}
	if p.carry > 0 {
		if pd := p.lastData.Add(partialWait); d.IsZero() || pd.Before(d) {
			d = pd
		}
	}
	return d
}

// consumable is how much of the n bytes just peeked the pump may consume from the pipe, after
// frame wrote the whole lines of the carry (before bytes, consumed earlier) and of them. What it
// wrote, yes; the partial line after it stays in the pipe, dropped from the carry, so that the
// next read starts at that line's beginning and a daemon killed meanwhile tears no line. A
// partial line alone (nothing written) is consumed into the carry as before: left in the pipe,
// it would be peeked again and again until its end comes.
func (p *pump) consumable(before, n int) int {
	written := before + n - p.carry
	if written == 0 || p.carry > n {
		return n
	}
	tail := p.carry
	p.carry = 0
	return n - tail
}

// source reads a non-blocking duplicate of the pump's fd and parks in the shared waiter when it
// is empty; a regular file (not pollable) is read directly.
type source struct {
	fd       int
	w        *waiter
	ch       chan struct{}
	deadline time.Time
}

func (p *pump) pollable() (*source, error) {
	dup, err := unix.FcntlInt(uintptr(p.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	s := &source{fd: dup}
	w, err := sharedWaiter()
	if err == nil {
		if s.ch, err = w.add(dup); err == nil {
			s.w = w
		}
	}
	if s.w != nil {
		if err := unix.SetNonblock(dup, true); err != nil {
			s.close()
			return nil, os.NewSyscallError("fcntl", err)
		}
	}
	return s, nil
}

func (s *source) read(b []byte) (int, error) {
	for {
		n, err := unix.Read(s.fd, b)
		if err != unix.EAGAIN || s.w == nil {
			return n, err
		}
		if err := s.w.wait(s.fd, s.ch, s.deadline); err != nil {
			return 0, err
		}
	}
}

func (s *source) setDeadline(t time.Time) { s.deadline = t }

// park arranges for resume to run (on the waiter's goroutine: it must not block) once the
// source is readable, and says whether it did; a blocking fd cannot be parked.
func (s *source) park(resume func()) bool {
	return s.w != nil && s.w.park(s.fd, resume) == nil
}

// ready waits until the source has data (or its end) to read, or its deadline passes.
func (s *source) ready() error {
	if s.w == nil {
		return nil // a blocking fd: the read waits
	}
	return s.w.wait(s.fd, s.ch, s.deadline)
}

func (s *source) close() {
	if s.w != nil {
		s.w.remove(s.fd)
	}
	unix.Close(s.fd)
}

// ensureRoom makes buf hold the carry plus a full window.
func (p *pump) ensureRoom() {
	if need := p.carry + p.window; len(p.buf) < need {
		// Room for a maximal carry too, so that growing the window does not
		// reallocate again right after.
		nb := make([]byte, p.maxLine+p.window)
		copy(nb, p.buf[:p.carry])
		p.buf = nb
	}
}

// frame writes the whole lines of data (the carry followed by what was just
// read) and keeps the trailing partial line as the next carry.
func (p *pump) frame(data []byte) {
	if p.cfg.Date == nil && p.cfg.JSON == nil {
		if end, ok := p.plainEnd(data); ok {
			// Nothing to add or cut: write the lines straight from buf.
			p.write(data[:end])
			p.keep(data[end:])
			return
		}
	}
	p.stamp()
	out := p.out[:0]
	flushAt := 2 * (p.capacity + p.maxLine)
	pos := 0
	for {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			break
		}
		out = p.appendLine(out, data[pos:pos+i])
		pos += i + 1
		if len(out) >= flushAt {
			// Many tiny lines with long prefixes: bound the buffer.
			p.write(out)
			out = out[:0]
		}
	}
	rest := data[pos:]
	for len(rest) > p.maxLine {
		cut := utf8Cut(rest, p.maxLine)
		out = p.appendPiece(out, rest[:cut])
		rest = rest[cut:]
	}
	p.write(out)
	p.out = out[:0]
	p.keep(rest)
}

// plainEnd returns the end of the last whole line of data when no line needs
// splitting, the common case in which data can be written as it is.
func (p *pump) plainEnd(data []byte) (int, bool) {
	pos := 0
	for {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			break
		}
		if i > p.maxLine {
			return 0, false
		}
		pos += i + 1
	}
	return pos, len(data)-pos <= p.maxLine
}

// finish writes the carry at EOF as a line of its own.
func (p *pump) finish() {
	if p.carry == 0 {
		return
	}
	p.stamp()
	out := p.appendLine(p.out[:0], p.buf[:p.carry])
	p.write(out)
	p.out = out[:0]
	p.carry = 0
}

func (p *pump) keep(rest []byte) {
	p.carry = copy(p.buf, rest)
}

// appendLine appends one line (without its '\n'), split if it is too long.
func (p *pump) appendLine(out, line []byte) []byte {
	for len(line) > p.maxLine {
		cut := utf8Cut(line, p.maxLine)
		out = p.appendPiece(out, line[:cut])
		line = line[cut:]
	}
	if p.cfg.JSON != nil {
		return p.appendRecord(out, line, p.cfg.JSON.Type)
	}
	out = append(out, p.prefix...)
	out = append(out, line...)
	return append(out, '\n')
}

func (p *pump) appendPiece(out, piece []byte) []byte {
	if p.cfg.JSON != nil {
		return p.appendRecord(out, append(slices.Clip(piece), splitMarker...), p.cfg.JSON.Type)
	}
	out = append(out, p.prefix...)
	out = append(out, piece...)
	out = append(out, splitMarker...)
	return append(out, '\n')
}

// utf8Cut returns where to cut b, which is longer than limit, so that the
// first part holds at most limit bytes and does not end inside a UTF-8
// sequence. Bytes that are not UTF-8 are cut at limit.
func utf8Cut(b []byte, limit int) int {
	for i := limit; i > 0 && i > limit-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return limit
}

// stamp sets the prefix for the lines of the current chunk. All lines of one
// read share a time; without a sub-second token it is formatted once a second.
func (p *pump) stamp() {
	if p.cfg.JSON != nil {
		p.stampJSON()
		return
	}
	d := p.cfg.Date
	if d == nil {
		return
	}
	t := p.now()
	if !d.subSecond {
		sec := t.Unix()
		if p.prefixSet && sec == p.prefixSec {
			return
		}
		p.prefixSec = sec
	}
	p.prefix = d.Append(p.prefix[:0], t.In(p.loc))
	p.prefix = append(p.prefix, ": "...)
	p.prefixSet = true
}
