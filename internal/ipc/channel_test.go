package ipc

import (
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
	ch, err := Open(sp[0])
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
