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
	// OnTooLong, if set, hears of a message longer than MaxMessage, which was dropped whole (its
	// length in bytes) while the channel went on.
	OnTooLong func(bytes int)
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
	return &Channel{conn: uc, acks: make(chan bool, 1), closed: make(chan struct{}), resumed: resumed}, nil
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

// writeLocked writes one whole message. An app that stops reading its channel must not hold up
// the daemon (DESIGN rule 3); a message cut by the timeout would leave a torn line that the
// child cannot parse, so the channel is closed then.
func (c *Channel) writeLocked(b, oob []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, _, err := c.conn.WriteMsgUnix(b, oob, nil)
	if err == nil && n < len(b) {
		_, err = c.conn.Write(b[n:]) // the fds went with the first byte
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("ipc channel closed: %w", err)
	}
	return nil
}

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

// MaxMessage bounds one message the daemon holds. A Node primary takes far longer ones (256 MiB
// measured), but every channel's reader could hold one at a time: past this bound a message is
// dropped, counted and said, and the channel stays open, so the app goes on.
const MaxMessage = 64 << 20

// Serve reads messages until EOF and calls fn for each, in order. Handles the child passes are
// acknowledged (a sender queues every later message until its handle is acked, research §1.3)
// and closed: tend does not take sockets from apps.
//
// It consumes whole messages only, when they fit its buffer: it peeks, and reads up to the last
// newline it saw. A daemon killed at any moment then leaves the channel at a message boundary,
// where the next one resumes it; only a message longer than the buffer can be cut, and the next
// daemon skips its rest (see Open).
func (c *Channel) Serve(fn func(Message)) error {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*16))
	rc, err := c.conn.SyscallConn()
	if err != nil {
		return err
	}
	var pending []byte
	dropping := 0 // bytes of a message over MaxMessage dropped so far (0: none under way)
	first := c.resumed
	for {
		var n, oobn int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			p, _, e := unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if e == unix.EAGAIN {
				return false
			}
			if e != nil || p == 0 {
				n, rerr = 0, e
				return true
			}
			want := p
			if i := bytes.LastIndexByte(buf[:p], '\n'); i >= 0 {
				want = i + 1
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
		if n > 0 && dropping > 0 {
			// The rest of a message too long to keep: dropped up to its newline.
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				dropping += len(data)
				data = nil
			} else {
				if c.OnTooLong != nil {
					c.OnTooLong(dropping + i + 1)
				}
				dropping, data = 0, data[i+1:]
			}
		}
		if len(data) > 0 {
			pending = append(pending, data...)
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				line := pending[:i]
				// Bun prefixes its internal messages with one 0x02 byte (research §1.5).
				line = bytes.TrimPrefix(line, []byte{0x02})
				if first && !json.Valid(line) {
					// A JSON value's proper suffix is never valid JSON: this is the rest of a
					// message the previous daemon had half read.
					if c.OnSkip != nil {
						c.OnSkip(i + 1)
					}
				} else if len(bytes.TrimSpace(line)) > 0 {
					c.dispatch(append([]byte(nil), line...), fn)
				}
				first = false
				pending = pending[i+1:]
			}
			if len(pending) == 0 {
				pending = nil
			}
			if len(pending) > MaxMessage {
				dropping, pending, first = len(pending), nil, false
			}
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
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
