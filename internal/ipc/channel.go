// Package ipc speaks Node's IPC channel (NODE_CHANNEL_FD, json serialization) from the daemon's
// side: newline-delimited JSON over an AF_UNIX stream socket, with file descriptors passed as
// SCM_RIGHTS (research/cluster-internals.md §1), and the whole of Node's cluster protocol on it
// (Dispatch: queryServer answered with a listening socket, listening, disconnect, the preload's
// own commands).
package ipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Message is one decoded message from the child. Raw is the JSON as sent.
type Message struct {
	Raw json.RawMessage
	Cmd string // the "cmd" field of Node's internal messages (NODE_HANDLE, NODE_CLUSTER…), if any
}

// IsString reports whether the message is the JSON string s (as process.send('ready') sends).
func (m Message) IsString(s string) bool {
	var v string
	return json.Unmarshal(m.Raw, &v) == nil && v == s
}

// Channel is the daemon end of one child's IPC channel.
type Channel struct {
	conn *net.UnixConn
	wmu  sync.Mutex
	hmu  sync.Mutex   // one handle in flight per channel (research §1.3)
	acks chan bool    // true for NODE_HANDLE_ACK, false for NACK
	seq  atomic.Int64 // our side's NODE_CLUSTER sequence numbers

	closeOnce sync.Once
	closed    chan struct{}

	resumed bool
	// OnSkip, if set, hears of the head of a resumed channel that was skipped: the rest of a
	// message an earlier daemon had begun to read when it died.
	OnSkip func(bytes int)
	// OnTooLong, if set, hears of a message dropped whole while the channel went on: its length
	// in bytes, and whether it was over MaxMessage (else the daemon held too much of other
	// channels' long messages at that moment).
	OnTooLong func(bytes int, overMax bool)

	max int // MaxMessage; a test sets less
}

// Open takes ownership of fd (the daemon end of the socketpair). resumed is a channel an earlier
// daemon read from: its first line is skipped unless it is whole JSON.
func Open(fd int, resumed bool) (*Channel, error) {
	f := os.NewFile(uintptr(fd), "ipc")
	c, err := net.FileConn(f)
	f.Close() // FileConn dup'ed it
	if err != nil {
		return nil, fmt.Errorf("ipc channel: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("ipc channel: not a unix socket")
	}
	return &Channel{conn: uc, acks: make(chan bool, 1), closed: make(chan struct{}), resumed: resumed, max: MaxMessage}, nil
}

// Send writes one message.
func (c *Channel) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b, nil)
}

// SendRaw writes one message that is JSON already, given in parts (without its newline), as it
// is: a long message routed between apps is not copied again.
func (c *Channel) SendRaw(parts ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, p := range parts {
		if err := c.writeLocked(p, nil); err != nil {
			return err
		}
	}
	return c.writeLocked([]byte{'\n'}, nil)
}

// writeLocked writes one whole message. An app that stops reading its channel must not hold up
// the daemon (DESIGN rule 3): each 1 MiB must go within writeTimeout, so a long message to an
// app that reads goes on as long as it reads. A message cut by the timeout would leave a torn
// line that the child cannot parse, so the channel is closed then.
func (c *Channel) writeLocked(b, oob []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, _, err := c.conn.WriteMsgUnix(b[:min(len(b), writeChunk)], oob, nil)
	for err == nil && n < len(b) { // the fds went with the first byte
		_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		var m int
		m, err = c.conn.Write(b[n:min(len(b), n+writeChunk)])
		n += m
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("ipc channel closed: %w", err)
	}
	return nil
}

const writeChunk = 1 << 20

const writeTimeout = 5 * time.Second

// ErrNoAck is returned when the child did not acknowledge a handle.
var ErrNoAck = errors.New("the process did not acknowledge the socket it was sent")

// SendHandle writes one message wrapped as Node's NODE_HANDLE of the given type ("net.Native"
// for a listening socket) with fd passed in the same sendmsg, and waits for the child's ACK,
// retransmitting on a NACK as Node does. It must not be called from Serve's callback: the ACK
// arrives through Serve.
func (c *Channel) SendHandle(typ string, msg any, fd int) error {
	b, err := json.Marshal(map[string]any{"cmd": "NODE_HANDLE", "type": typ, "msg": msg})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	c.hmu.Lock()
	defer c.hmu.Unlock()
	select { // a stray ACK from before must not answer this handle
	case <-c.acks:
	default:
	}
	for range 3 {
		c.wmu.Lock()
		err = c.writeLocked(b, unix.UnixRights(fd))
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		select {
		case ok := <-c.acks:
			if ok {
				return nil
			}
		case <-c.closed:
			return ErrNoAck
		case <-time.After(handleAckTimeout):
			return ErrNoAck
		}
	}
	return ErrNoAck
}

const handleAckTimeout = 10 * time.Second

// NextSeq numbers the daemon's NODE_CLUSTER messages on this channel.
func (c *Channel) NextSeq() int64 { return c.seq.Add(1) - 1 }

// Close closes the channel; the child sees 'disconnect'.
func (c *Channel) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.conn.Close()
	})
	return err
}

// MaxMessage bounds one message the daemon holds: 512 MiB, which no message a Node app can send
// reaches. V8's longest string is 2^29-24 characters; Node 20 sent and received 511 MiB (the
// primary then at 1.7 GB of RSS), and a 512 MiB string fails in the sender itself ("Invalid
// string length"). Past it a message is dropped, counted and said, and the channel stays open.
const MaxMessage = 512 << 20

// heldBudget bounds the bytes of unfinished messages held across every channel at once, so that
// many apps sending long messages cannot take the daemon's memory: a message that would go past
// it is dropped and said as one over MaxMessage is. One message of MaxMessage always fits.
const heldBudget = 1 << 30

// held is what every channel's unfinished messages hold now, counted against heldBudget.
var held atomic.Int64

// copyBelow is the length from which an unfinished message is held in chunks (longMsg) and
// counted against heldBudget; a shorter one grows in one slice, and is copied out of it for
// its handler.
const copyBelow = 1 << 20

// Serve reads messages until EOF and calls fn for each, in order. Handles the child passes are
// acknowledged (a sender queues every later message until its handle is acked, research §1.3)
// and closed: tend does not take sockets from apps.
//
// It consumes whole messages only, when they fit its buffer: it peeks, and reads up to the last
// newline it saw. A daemon killed at any moment then leaves the channel at a message boundary,
// where the next one resumes it; only a message longer than peekSize (64 KiB) can be cut, and the next
// daemon skips its rest (see Open).
func (c *Channel) Serve(fn func(Message)) error {
	// Small at first, and grown to what a read takes (up to peekSize): most apps send a message
	// now and then, and a thousand instances' readers would otherwise hold 64 MB.
	buf := make([]byte, 4<<10)
	oob := make([]byte, unix.CmsgSpace(4*16))
	rc, err := c.conn.SyscallConn()
	if err != nil {
		return err
	}
	var (
		pending  []byte  // the unfinished message, while short
		long     longMsg // the unfinished message, once long
		counted  int     // bytes of both counted in held
		dropping int     // bytes of a message being dropped so far (0: none under way)
		overMax  bool
		first    = c.resumed
	)
	defer func() { held.Add(-int64(counted)) }()
	deliver := func(line []byte, copied bool) {
		size := len(line) + 1
		// Bun prefixes its internal messages with one 0x02 byte (research §1.5).
		line = bytes.TrimPrefix(line, []byte{0x02})
		if first && !json.Valid(line) {
			// A JSON value's proper suffix is never valid JSON: this is the rest of a message
			// the previous daemon had half read.
			if c.OnSkip != nil {
				c.OnSkip(size)
			}
		} else if len(bytes.TrimSpace(line)) > 0 {
			if !copied {
				line = append([]byte(nil), line...)
			}
			c.dispatch(line, fn)
		}
		first = false
	}
	drop := func(n int) {
		overMax = n > c.max
		dropping, pending, first = n, nil, false
		long = longMsg{}
	}
	for {
		var n, oobn int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			want, e := peekWhole(int(fd))
			if e == unix.EAGAIN {
				return false
			}
			if e != nil || want == 0 {
				n, rerr = 0, e
				return true
			}
			if want > len(buf) {
				buf = make([]byte, max(want, min(2*len(buf), peekSize)))
			}
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf[:want], oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if oobn > 0 {
			closeRights(oob[:oobn])
		}
		data := buf[:n]
		switch i := bytes.IndexByte(data, '\n'); {
		case len(data) == 0:
		case dropping > 0 && i < 0:
			dropping += len(data)
			data = nil
		case dropping > 0:
			// The rest of a message too long to keep: dropped up to its newline.
			size := dropping + i + 1
			if c.OnTooLong != nil {
				c.OnTooLong(size, overMax)
			}
			dropping, data = 0, data[i+1:]
			giveBack(size)
		case long.n > 0 && i < 0:
			if c.room(long.n+len(data), counted) {
				long.add(data)
			} else {
				drop(long.n + len(data))
			}
			data = nil
		case long.n > 0:
			size := long.n + i
			line := long.assemble(data[:i])
			long = longMsg{} // its chunks go before the delivery, which may wait on a slow receiver
			deliver(line, true)
			data = data[i+1:]
			giveBack(size)
		case i < 0 && len(pending)+len(data) >= copyBelow:
			// Long: held in chunks from here, so that its growth never copies it, and
			// assembled once whole.
			if c.room(len(pending)+len(data), counted) {
				long.add(pending)
				long.add(data)
				pending = nil
			} else {
				drop(len(pending) + len(data))
			}
			data = nil
		}
		if len(data) > 0 {
			// Only the new bytes can hold a newline: a message is not scanned again at every
			// read.
			from := len(pending)
			pending = append(pending, data...)
			for {
				i := bytes.IndexByte(pending[from:], '\n')
				if i < 0 {
					break
				}
				i += from
				from = 0
				deliver(pending[:i], false)
				pending = pending[i+1:]
			}
			if len(pending) == 0 {
				pending = nil
			}
		}
		// What the unfinished message holds now, for the budget of every channel.
		held.Add(int64(len(pending) + long.n - counted))
		counted = len(pending) + long.n
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// giveBack returns the memory of a message of size bytes, now garbage, to the system once the
// message was very long: the daemon's RSS then goes back to what it was at once, rather than
// staying at the message's size until the runtime returns it bit by bit, and a second long
// message does not find the first one's garbage still in the heap.
func giveBack(size int) {
	if size >= freeAfter {
		debug.FreeOSMemory()
	}
}

// freeAfter is the size from which giveBack returns a message's memory at once (a forced GC,
// about a millisecond with the daemon's small heap).
const freeAfter = 64 << 20

// longMsg holds a long unfinished message as a list of chunks: it grows without copying what it
// has, and is copied once, into a slice of its exact length, when its newline comes.
type longMsg struct {
	chunks [][]byte
	n      int
}

func (l *longMsg) add(p []byte) {
	for len(p) > 0 {
		if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == cap(l.chunks[k-1]) {
			l.chunks = append(l.chunks, make([]byte, 0, copyBelow))
		}
		last := &l.chunks[len(l.chunks)-1]
		m := min(len(p), cap(*last)-len(*last))
		*last = append(*last, p[:m]...)
		p, l.n = p[m:], l.n+m
	}
}

// assemble returns the whole message: what it holds, then tail.
func (l *longMsg) assemble(tail []byte) []byte {
	line := make([]byte, 0, l.n+len(tail))
	for _, c := range l.chunks {
		line = append(line, c...)
	}
	return append(line, tail...)
}

// peekSize is how far a read looks ahead for the last newline: a message up to this long is
// read whole, never cut by a daemon that dies between two reads.
const peekSize = 64 << 10

var (
	peekMu  sync.Mutex // one peek at a time shares one buffer: peeks are short and never block
	peekBuf = make([]byte, peekSize)
)

// peekWhole looks at what the socket holds, up to peekSize, and returns how much of it to read:
// up to its last newline, or all of it when it has none.
func peekWhole(fd int) (int, error) {
	peekMu.Lock()
	defer peekMu.Unlock()
	p, _, err := unix.Recvfrom(fd, peekBuf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err != nil || p <= 0 {
		return 0, err
	}
	if i := bytes.LastIndexByte(peekBuf[:p], '\n'); i >= 0 {
		return i + 1, nil
	}
	return p, nil
}

// room reports whether an unfinished message of n bytes may be held: under this channel's
// bound, and, once long, within what every channel may hold together (counted: what this one
// holds in it now).
func (c *Channel) room(n, counted int) bool {
	if n > c.max {
		return false
	}
	return n < copyBelow || held.Load()-int64(counted)+int64(n) <= heldBudget
}

func (c *Channel) dispatch(line []byte, fn func(Message)) {
	m := Message{Raw: line}
	var head struct {
		Cmd string `json:"cmd"`
	}
	if len(line) > 0 && line[0] == '{' {
		_ = json.Unmarshal(line, &head)
		m.Cmd = head.Cmd
	}
	switch m.Cmd {
	case "NODE_HANDLE":
		_ = c.Send(map[string]string{"cmd": "NODE_HANDLE_ACK"})
	case "NODE_HANDLE_ACK", "NODE_HANDLE_NACK":
		select {
		case c.acks <- m.Cmd == "NODE_HANDLE_ACK":
		default:
		}
		return
	}
	fn(m)
}

func closeRights(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}
