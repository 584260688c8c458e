package ipc

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A real Node child on the channel: process.send exists, 'ready' arrives, our messages reach
// process.on('message'), and a handle it sends is acknowledged (or every later message would
// queue behind it).
func TestNodeChannel(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	child := os.NewFile(uintptr(sp[1]), "ipc-child")
	cmd := exec.Command(node, "-e", `
process.send('ready');
process.on('message', (m) => {
  const net = require('net');
  const srv = net.createServer().listen(0, () => {
    process.send({got: m}, srv, () => { process.send('after-handle'); srv.close(); process.disconnect(); });
  });
});`)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Env = append(os.Environ(), "NODE_CHANNEL_FD=3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	ch, err := Open(sp[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	got := make(chan Message, 8)
	go ch.Serve(func(m Message) { got <- m })
	next := func() Message {
		select {
		case m := <-got:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no message from node")
		}
		return Message{}
	}
	if m := next(); !m.IsString("ready") {
		t.Fatalf("first message %s", m.Raw)
	}
	if err := ch.Send(map[string]string{"hello": "world"}); err != nil {
		t.Fatal(err)
	}
	m := next()
	if m.Cmd != "NODE_HANDLE" || !strings.Contains(string(m.Raw), `"got":{"hello":"world"}`) {
		t.Fatalf("handle message %s", m.Raw)
	}
	if m := next(); !m.IsString("after-handle") {
		var v any
		json.Unmarshal(m.Raw, &v)
		t.Fatalf("after the ack, the next message should come: %v", v)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v", err)
	}
}

// SendHandle passes the fd with the message, waits for the ACK (which comes through Serve),
// retransmits on a NACK, and gives up without one.
func TestSendHandleWaitsForAck(t *testing.T) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := sp[1]
	defer unix.Close(peer)
	ch, err := Open(sp[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	go ch.Serve(func(Message) {})

	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	done := make(chan error, 1)
	go func() { done <- ch.SendHandle("net.Native", ch.QueryReply(1, "k", nil, 0), int(w.Fd())) }()

	read := func() (string, int) {
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := unix.Recvmsg(peer, buf, oob, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds := -1
		if msgs, _ := unix.ParseSocketControlMessage(oob[:oobn]); len(msgs) == 1 {
			got, _ := unix.ParseUnixRights(&msgs[0])
			for _, fd := range got {
				unix.Close(fd)
			}
			fds = len(got)
		}
		return string(buf[:n]), fds
	}
	msg, fds := read()
	if fds != 1 || !strings.Contains(msg, `"cmd":"NODE_HANDLE"`) || !strings.Contains(msg, `"type":"net.Native"`) || !strings.Contains(msg, `"ack":1`) {
		t.Fatalf("first send: %q with %d fds", msg, fds)
	}
	unix.Write(peer, []byte(`{"cmd":"NODE_HANDLE_NACK"}`+"\n"))
	if msg, fds = read(); fds != 1 {
		t.Fatalf("after a NACK the handle is sent again: %q with %d fds", msg, fds)
	}
	unix.Write(peer, []byte(`{"cmd":"NODE_HANDLE_ACK"}`+"\n"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SendHandle did not return after the ACK")
	}
}

func TestParseCluster(t *testing.T) {
	m, err := ParseCluster(json.RawMessage(`{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"data":null,"address":null,"port":3000,"addressType":4,"backlog":0,"seq":1}`))
	if err != nil || m.Act != "queryServer" || *m.Seq != 1 || !m.TCP() || m.Host() != "" || *m.Port != 3000 {
		t.Fatalf("%+v %v", m, err)
	}
	m, _ = ParseCluster(json.RawMessage(`{"act":"queryServer","address":"/tmp/s.sock","port":null,"addressType":-1,"seq":2}`))
	if m.TCP() {
		t.Fatal("a unix path is not a TCP port")
	}
	m, _ = ParseCluster(json.RawMessage(`{"act":"queryServer","address":"127.0.0.1","port":3000,"addressType":"udp4","seq":3}`))
	if m.TCP() {
		t.Fatal("udp is not a TCP port")
	}
}

// A message longer than the channel's bound is dropped and said, and the channel goes on: the
// next message arrives. So is a long one past what every channel may hold together.
func TestTooLongMessageDropped(t *testing.T) {
	for _, tt := range []struct {
		name    string
		held    int64 // what other channels hold
		size    int
		overMax bool
	}{
		{"over the bound", 0, 3 << 20, true},
		{"past the budget", heldBudget - 1<<20, 2 << 20, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			held.Add(tt.held)
			defer held.Add(-tt.held)
			ch, w := openPair(t)
			ch.max = 2 << 20
			var tooLong []int
			ch.OnTooLong = func(n int, overMax bool) {
				tooLong = append(tooLong, n)
				if overMax != tt.overMax {
					t.Errorf("overMax %v, want %v", overMax, tt.overMax)
				}
			}
			go func() {
				defer w.Close()
				w.Write([]byte("\"before\"\n"))
				chunk := bytes.Repeat([]byte("x"), 64<<10)
				w.Write([]byte("\""))
				for written := 1; written < tt.size; written += len(chunk) {
					w.Write(chunk)
				}
				w.Write([]byte("\"\n\"after\"\n"))
			}()
			var got []string
			ch.Serve(func(m Message) { got = append(got, string(m.Raw)) })
			if strings.Join(got, ",") != `"before","after"` {
				t.Errorf("messages %q, want the one before and the one after the long one", got)
			}
			if len(tooLong) != 1 || tooLong[0] < tt.size {
				t.Errorf("OnTooLong heard %v, want one message of over %d bytes", tooLong, tt.size)
			}
			if h := held.Load(); h != tt.held {
				t.Errorf("held %d once the channel ended, want %d", h, tt.held)
			}
		})
	}
}

// Long messages under the bound arrive whole, in order with the short ones between them, each
// handed over in a slice of its own; what the channel held is given back.
func TestLongMessagesArrive(t *testing.T) {
	ch, w := openPair(t)
	str := func(b byte, n int) []byte { return append(append([]byte(`"`), bytes.Repeat([]byte{b}, n)...), '"') }
	want := [][]byte{str('y', 3<<20), []byte(`{"a":1}`), str('z', copyBelow-2), str('w', copyBelow+5), []byte(`"end"`)}
	go func() {
		defer w.Close()
		for _, m := range want {
			w.Write(append(append([]byte(nil), m...), '\n'))
		}
	}()
	var got [][]byte
	ch.Serve(func(m Message) {
		got = append(got, m.Raw)
		_ = append(m.Raw, "overwrite?"...) // a handler's append must not reach the next message
	})
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("message %d: %d bytes %.20q…, want %d bytes %.20q…", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
	if h := held.Load(); h != 0 {
		t.Errorf("held %d once the channel ended", h)
	}
}

// openPair opens a channel on one end of a socketpair and returns the other end, the child's.
func openPair(t *testing.T) (*Channel, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := Open(fds[0], false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch, os.NewFile(uintptr(fds[1]), "child")
}
