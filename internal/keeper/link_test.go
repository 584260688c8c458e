package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"testing"
)

// These tests run a daemon's Link (Connect, hello, Serve, Put) against a keeper end written here
// with the package's own send and recv: what a keeper says is controlled message by message.

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type connected struct {
	link *Link
	st   State
	err  error
}

// connectAsync runs Connect on the daemon's end of a new pair and returns the keeper's end, which
// has already received the daemon's hello; the result of Connect comes on the channel.
func connectAsync(t *testing.T) (*net.UnixConn, <-chan connected) {
	t.Helper()
	k, d, err := pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	ch := make(chan connected, 1)
	go func() {
		l, st, err := Connect(d, discard)
		if l != nil {
			t.Cleanup(func() { l.Close() })
		}
		ch <- connected{l, st, err}
	}()
	buf, oob := recvBuffers()
	m, fds, err := recv(k, buf, oob)
	if err != nil || m.Op != opHello || m.Version != Version || len(fds) != 0 {
		t.Fatalf("the daemon's hello: %+v, %v, %v", m, fds, err)
	}
	return k, ch
}

func mustSend(t *testing.T, c *net.UnixConn, m msg, fds ...int) {
	t.Helper()
	if err := send(c, m, fds); err != nil {
		t.Fatal(err)
	}
}

// A keeper of another protocol version is refused with ErrVersion, and the channel closed: the
// daemon adopts nothing it might misread.
func TestHelloVersionMismatch(t *testing.T) {
	k, ch := connectAsync(t)
	mustSend(t, k, msg{Op: opHello, Version: Version + 1, Pid: 1})
	r := <-ch
	if !errors.Is(r.err, ErrVersion) || r.link != nil {
		t.Fatalf("Connect: %v, link %v; want ErrVersion", r.err, r.link)
	}
	buf, oob := recvBuffers()
	if _, _, err := recv(k, buf, oob); !errors.Is(err, errEOF) {
		t.Fatalf("the daemon's end after a refusal: %v; want it closed", err)
	}
}

// A state of records (with fds) and exits comes back whole in State, in order, and each fd is a
// live copy: written through the daemon's copy, the data comes out of the pipe's read end, and
// once the daemon closes it no writer is left. The link then serves: exits reach onExit, a Put
// reaches the keeper with its fds, and Serve ends when the keeper goes, which the link then
// reports (Gone) and stops sending to.
func TestHelloState(t *testing.T) {
	k, ch := connectAsync(t)
	e1 := Exit{Pid: 100, Code: 7, At: 1}
	e2 := Exit{Pid: 101, Code: -1, Signal: 9, At: 2}
	mustSend(t, k, msg{Op: opHello, Version: Version, Pid: 42, Build: "b1", Exits: []Exit{e1}})
	var reads []*os.File
	for i, key := range []string{"run/a", "run/b", "sock/c"} {
		r1, w1, _ := os.Pipe()
		r2, w2, _ := os.Pipe()
		reads = append(reads, r1, r2)
		defer r1.Close()
		defer r2.Close()
		info, _ := json.Marshal(map[string]int{"i": i})
		mustSend(t, k, msg{Op: opRecord, Key: key, Info: info, Names: names(2)}, int(w1.Fd()), int(w2.Fd()))
		w1.Close() // the daemon's copies are the only writers left
		w2.Close()
		if i == 0 {
			mustSend(t, k, msg{Op: opExit, Exits: []Exit{e2}})
		}
	}
	mustSend(t, k, msg{Op: opEnd, Records: 3})
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	st := r.st
	if st.KeeperPid != 42 || st.Build != "b1" || !slices.Equal(st.Exits, []Exit{e1, e2}) || len(st.Records) != 3 {
		t.Fatalf("state %+v", st)
	}
	for i, rec := range st.Records {
		want := []string{"run/a", "run/b", "sock/c"}[i]
		if rec.Key != want || string(rec.Info) != fmt.Sprintf(`{"i":%d}`, i) || len(rec.Names) != 2 || len(rec.Fds) != 2 {
			t.Fatalf("record %d: %+v", i, rec)
		}
		for j, fd := range rec.Fds {
			f := os.NewFile(uintptr(fd), "kept")
			data := fmt.Sprintf("%s/%d", want, j)
			if _, err := f.WriteString(data); err != nil {
				t.Fatal(err)
			}
			f.Close()
			b, err := io.ReadAll(reads[i*2+j]) // EOF only once the last writer has gone
			if err != nil || string(b) != data {
				t.Fatalf("record %d fd %d: read %q, %v", i, j, b, err)
			}
		}
	}

	got := make(chan Exit, 1)
	served := make(chan error, 1)
	go func() { served <- r.link.Serve(func(e Exit) { got <- e }) }()
	mustSend(t, k, msg{Op: opExit, Exits: []Exit{e1}})
	if e := <-got; e != e1 {
		t.Fatalf("onExit got %+v", e)
	}
	_, pw := testPipe(t)
	r.link.Put("run/d", map[string]string{"app": "d"}, []any{"stdout"}, []int{int(pw.Fd())})
	buf, oob := recvBuffers()
	m, fds, err := recv(k, buf, oob)
	if err != nil || m.Op != opPut || m.Key != "run/d" || string(m.Info) != `{"app":"d"}` || len(fds) != 1 {
		t.Fatalf("put: %+v, %v, %v", m, fds, err)
	}
	closeAll(fds)
	if r.link.Failed() != 0 {
		t.Fatalf("%d messages failed", r.link.Failed())
	}
	if r.link.Gone() {
		t.Fatal("Gone with the keeper there")
	}
	k.Close()
	if err := <-served; err != nil || !r.link.Gone() {
		t.Fatalf("Serve after the keeper went: %v; Gone %v", err, r.link.Gone())
	}
	r.link.Put("run/e", nil, []any{"stdout"}, []int{int(pw.Fd())}) // kept by nobody, and said once already
	if r.link.Failed() != 0 {
		t.Fatalf("a put after the keeper went counted %d failures", r.link.Failed())
	}
}

// A daemon that closes its own link ends Serve without taking the keeper for gone.
func TestLinkCloseIsNotGone(t *testing.T) {
	k, ch := connectAsync(t)
	mustSend(t, k, msg{Op: opHello, Version: Version})
	mustSend(t, k, msg{Op: opEnd})
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	served := make(chan error, 1)
	go func() { served <- r.link.Serve(func(Exit) {}) }()
	r.link.Close()
	if err := <-served; err != nil || r.link.Gone() {
		t.Fatalf("Serve after Close: %v; Gone %v", err, r.link.Gone())
	}
}

// An "end" that announces another count than the records that came is refused, and the fds of
// the records that did come are closed: the pipe's read end sees its last writer go.
func TestHelloWrongRecordCount(t *testing.T) {
	k, ch := connectAsync(t)
	mustSend(t, k, msg{Op: opHello, Version: Version, Pid: 42})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mustSend(t, k, msg{Op: opRecord, Key: "a", Names: names(1)}, int(w.Fd()))
	mustSend(t, k, msg{Op: opRecord, Key: "b", Names: names(2)}, int(w.Fd()), int(w.Fd()))
	w.Close()
	mustSend(t, k, msg{Op: opEnd, Records: 3})
	res := <-ch
	if res.err == nil || res.link != nil || len(res.st.Records) != 0 {
		t.Fatalf("Connect: %v, %+v; want a refusal", res.err, res.st)
	}
	// Read returns EOF only once all three copies the daemon received are closed.
	if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v", b, err)
	}
}

// A record refused on the way (here one whose fds do not match its names) fails the hello, and
// the fds of the records before it are closed too.
func TestHelloBadRecord(t *testing.T) {
	k, ch := connectAsync(t)
	mustSend(t, k, msg{Op: opHello, Version: Version})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mustSend(t, k, msg{Op: opRecord, Key: "a", Names: names(1)}, int(w.Fd()))
	mustSend(t, k, msg{Op: opRecord, Key: "b", Names: names(2)}, int(w.Fd()))
	w.Close()
	if res := <-ch; res.err == nil {
		t.Fatal("Connect took a record whose fds do not match its names")
	}
	if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v", b, err)
	}
}

// FromEnv without the variable is a daemon without a keeper; a variable that names no fd is an
// error; either way the variable leaves the environment, so apps never inherit it.
func TestFromEnv(t *testing.T) {
	t.Setenv(EnvFd, "")
	os.Unsetenv(EnvFd)
	if l, _, err := FromEnv(discard); l != nil || err != nil {
		t.Fatalf("no %s: %v, %v", EnvFd, l, err)
	}
	for _, v := range []string{"x", "1", "-1"} {
		t.Setenv(EnvFd, v)
		if l, _, err := FromEnv(discard); l != nil || err == nil {
			t.Fatalf("%s=%q: %v, %v", EnvFd, v, l, err)
		}
		if _, ok := os.LookupEnv(EnvFd); ok {
			t.Fatalf("%s left in the environment", EnvFd)
		}
	}
}
