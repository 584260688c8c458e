// Package ipc speaks Node's IPC channel (NODE_CHANNEL_FD, json serialization) from the daemon's
// side: newline-delimited JSON over an AF_UNIX stream socket, with file descriptors passed as
// SCM_RIGHTS (research/cluster-internals.md §1).
package ipc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"

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
}

// Open takes ownership of fd (the daemon end of the socketpair).
func Open(fd int) (*Channel, error) {
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
	return &Channel{conn: uc}, nil
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
	_, err = c.conn.Write(b)
	return err
}

// Close closes the channel; the child sees 'disconnect'.
func (c *Channel) Close() error { return c.conn.Close() }

// Serve reads messages until EOF and calls fn for each, in order. Handles the child passes are
// acknowledged (a sender queues every later message until its handle is acked, research §1.3)
// and closed: tend does not take sockets from apps.
func (c *Channel) Serve(fn func(Message)) error {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*16))
	var pending []byte
	for {
		n, oobn, _, _, err := c.conn.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			closeRights(oob[:oobn])
		}
		if n > 0 {
			pending = append(pending, buf[:n]...)
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				line := pending[:i]
				// Bun prefixes its internal messages with one 0x02 byte (research §1.5).
				line = bytes.TrimPrefix(line, []byte{0x02})
				if len(bytes.TrimSpace(line)) > 0 {
					c.dispatch(append([]byte(nil), line...), fn)
				}
				pending = pending[i+1:]
			}
			if len(pending) == 0 {
				pending = nil
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
	if m.Cmd == "NODE_HANDLE" {
		_ = c.Send(map[string]string{"cmd": "NODE_HANDLE_ACK"})
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
