package keeper

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests drive the keeper's side of the channel (handle, helloLocked, flushLocked) in this
// process, against a daemon's real Link on the other end of a pair.

// received returns a new fd for f, as recv would hand the keeper one: the keeper owns it.
func received(t *testing.T, f *os.File) int {
	t.Helper()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// drained says whether every writer of r's pipe has gone (a read gives EOF at once).
func drained(t *testing.T, r *os.File) bool {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	b, err := io.ReadAll(r)
	return err == nil && len(b) == 0
}

// keeperHello connects a daemon's Link to k through handle, as serve would on its hello.
func keeperHello(t *testing.T, k *keeper) (*net.UnixConn, *Link, State, error) {
	t.Helper()
	kc, d, err := pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	ch := make(chan connected, 1)
	go func() {
		l, st, err := Connect(d, discard)
		ch <- connected{l, st, err}
	}()
	buf, oob := recvBuffers()
	m, fds, err := recv(kc, buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	herr := k.handle(kc, m, fds)
	if herr != nil {
		kc.Close() // as serve does when it refuses a hello
	}
	r := <-ch
	if r.link != nil {
		t.Cleanup(func() { r.link.Close() })
	}
	if herr != nil && r.err == nil {
		t.Fatalf("the keeper refused the hello (%v) and the daemon did not see it", herr)
	}
	return kc, r.link, r.st, r.err
}

// A put keeps the fds; a put of the same key closes the copies it replaces (after taking the new
// ones); a drop closes them; an unknown key or operation changes nothing.
func TestKeeperPutReplaceDrop(t *testing.T) {
	k := newKeeper(Options{Log: discard})
	r1, w1 := testPipe(t)
	r2, w2 := testPipe(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.handle(nil, msg{Op: opPut, Key: "a", Names: names(1)}, []int{received(t, w1)}))
	w1.Close()
	if drained(t, r1) {
		t.Fatal("a put did not keep its fd")
	}
	must(k.handle(nil, msg{Op: opPut, Key: "a", Names: names(2)}, []int{received(t, w2), received(t, w2)}))
	w2.Close()
	if !drained(t, r1) {
		t.Fatal("a put of the same key did not close the copies it replaced")
	}
	must(k.handle(nil, msg{Op: opDrop, Key: "nothing"}, nil))
	if drained(t, r2) {
		t.Fatal("the record was lost")
	}
	must(k.handle(nil, msg{Op: opDrop, Key: "a"}, nil))
	if !drained(t, r2) || len(k.records) != 0 {
		t.Fatal("a drop did not close the record's fds")
	}
	if err := k.handle(nil, msg{Op: "frobnicate"}, nil); err == nil {
		t.Fatal("an unknown operation was accepted")
	}
}

// A daemon that says hello gets every record (in key order, with live fds) and the exits kept
// for it, which the keeper then forgets; exits reaped later reach its Serve.
func TestKeeperHello(t *testing.T) {
	k := newKeeper(Options{Version: "v9", Log: discard})
	r, w := testPipe(t)
	for _, key := range []string{"b", "a", "c"} {
		if err := k.handle(nil, msg{Op: opPut, Key: key, Info: []byte(`"` + key + `"`), Names: names(1)}, []int{received(t, w)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	k.exits = []Exit{{Pid: 5, Code: 1, At: 1}}
	kc, link, st, err := keeperHello(t, k)
	if err != nil {
		t.Fatal(err)
	}
	if st.KeeperPid != os.Getpid() || st.Build != "v9" || len(st.Exits) != 1 || st.Exits[0].Pid != 5 || k.exits != nil || k.conn != kc {
		t.Fatalf("state %+v; keeper exits %v", st, k.exits)
	}
	for i, rec := range st.Records {
		if rec.Key != []string{"a", "b", "c"}[i] || string(rec.Info) != `"`+rec.Key+`"` || len(rec.Fds) != 1 {
			t.Fatalf("record %d: %+v", i, rec)
		}
		unix.Close(rec.Fds[0])
	}
	if drained(t, r) {
		t.Fatal("the keeper gave its own copies away")
	}

	got := make(chan Exit, 1)
	go link.Serve(func(e Exit) { got <- e })
	k.mu.Lock()
	k.exits = append(k.exits, Exit{Pid: 6, Code: 2})
	k.flushLocked()
	left := len(k.exits)
	k.mu.Unlock()
	if e := <-got; e.Pid != 6 || left != 0 {
		t.Fatalf("flushed %+v, %d left", e, left)
	}
}

// A daemon of another protocol gets the keeper's version and nothing else, and fails with
// ErrVersion; the keeper keeps its exits for a daemon it can talk to.
func TestKeeperRefusesOtherVersion(t *testing.T) {
	k := newKeeper(Options{Log: discard})
	_, w := testPipe(t)
	if err := k.handle(nil, msg{Op: opPut, Key: "a", Names: names(1)}, []int{received(t, w)}); err != nil {
		t.Fatal(err)
	}
	k.exits = []Exit{{Pid: 5}}
	kc, d := testPair(t)
	if err := send(d, msg{Op: opHello, Version: Version + 1}, nil); err != nil {
		t.Fatal(err)
	}
	buf, oob := recvBuffers()
	m, _, _ := recv(kc, buf, oob)
	if err := k.handle(kc, m, nil); !errors.Is(err, ErrVersion) {
		t.Fatalf("handle: %v; want ErrVersion", err)
	}
	m, fds, err := recv(d, buf, oob)
	if err != nil || m.Op != opHello || m.Version != Version || len(m.Exits) != 0 || len(fds) != 0 {
		t.Fatalf("the reply: %+v, %v, %v", m, fds, err)
	}
	if len(k.exits) != 1 || k.conn != nil {
		t.Fatal("the keeper gave its exits or its channel to a daemon it refused")
	}
}

// manyExits are n exits as reap makes them (pids of 7 digits, unix nanoseconds).
func manyExits(n int) []Exit {
	out := make([]Exit, n)
	for i := range out {
		out[i] = Exit{Pid: 1000000 + i, Code: -1, Signal: 9, At: time.Now().UnixNano()}
	}
	return out
}

// The keeper keeps up to maxExits (4096) exits for the next daemon, more than one message can
// carry (maxMsg, 128 KiB: about 2,000 exits): they go in batches after the hello, so a hello
// never fails for them.
func TestKeeperHelloManyExits(t *testing.T) {
	k := newKeeper(Options{Log: discard})
	k.exits = manyExits(maxExits)
	_, _, st, err := keeperHello(t, k)
	if err != nil {
		t.Fatalf("a hello with %d exits kept: %v", maxExits, err)
	}
	if len(st.Exits) != maxExits {
		t.Fatalf("%d exits came of %d", len(st.Exits), maxExits)
	}
}

// Likewise flushLocked sends a burst of exits (a daemon that did not read for a while, many
// orphans reaped at once) in batches, so the connected daemon is told of every one.
func TestKeeperFlushManyExits(t *testing.T) {
	k := newKeeper(Options{Log: discard})
	_, link, _, err := keeperHello(t, k)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	done := make(chan struct{})
	go func() { link.Serve(func(Exit) { n++ }); close(done) }()
	k.mu.Lock()
	k.exits = manyExits(3000)
	k.flushLocked()
	left := len(k.exits)
	k.conn.Close()
	k.mu.Unlock()
	<-done
	if left != 0 || n != 3000 {
		t.Fatalf("%d exits told to the daemon, %d left pending; want 3000 and 0", n, left)
	}
}

// A replace names the binary of the next daemon: an absolute path only. (It writes into
// Options.Argv in place, so the caller's slice changes too.)
func TestKeeperReplace(t *testing.T) {
	argv := []string{"/bin/old", "daemon", "--child"}
	k := newKeeper(Options{Argv: argv, Log: discard})
	for _, exe := range []string{"", "tend", "./tend"} {
		if err := k.handle(nil, msg{Op: opReplace, Exe: exe}, nil); err == nil || k.replace {
			t.Fatalf("replace by %q was taken", exe)
		}
	}
	if err := k.handle(nil, msg{Op: opReplace, Exe: "/bin/new"}, nil); err != nil || !k.replace || k.o.Argv[0] != "/bin/new" || k.o.Argv[2] != "--child" {
		t.Fatalf("replace: %v; replace %v, argv %q", err, k.replace, k.o.Argv)
	}
}

// The first freeRestarts daemons come back at once (apps block on full pipes meanwhile); then
// 100 ms, doubling, up to 10 s.
func TestBackoff(t *testing.T) {
	for deaths, want := range map[int]time.Duration{
		0: 0, 1: 0, freeRestarts: 0,
		freeRestarts + 1: 100 * time.Millisecond, freeRestarts + 2: 200 * time.Millisecond,
		freeRestarts + 7: 6400 * time.Millisecond, freeRestarts + 8: 10 * time.Second, 1000: 10 * time.Second,
	} {
		if got := backoff(deaths); got != want {
			t.Errorf("backoff(%d) = %v; want %v", deaths, got, want)
		}
	}
}
