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

// A message longer than MaxMessage is dropped and said, and the channel goes on: the next
// message arrives.
func TestTooLongMessageDropped(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := Open(fds[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var tooLong []int
	ch.OnTooLong = func(n int) { tooLong = append(tooLong, n) }
	big := MaxMessage + 1<<20
	go func() {
		w := os.NewFile(uintptr(fds[1]), "child")
		defer w.Close()
		w.Write([]byte("\"before\"\n"))
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		w.Write([]byte("\""))
		for written := 1; written < big; written += len(chunk) {
			w.Write(chunk)
		}
		w.Write([]byte("\"\n\"after\"\n"))
	}()
	var got []string
	ch.Serve(func(m Message) { got = append(got, string(m.Raw)) })
	if strings.Join(got, ",") != `"before","after"` {
		t.Errorf("messages %q, want the one before and the one after the long one", got)
	}
	if len(tooLong) != 1 || tooLong[0] < MaxMessage {
		t.Errorf("OnTooLong heard %v, want one message over %d bytes", tooLong, MaxMessage)
	}
}
