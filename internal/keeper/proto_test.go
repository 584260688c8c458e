package keeper

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests run the wire protocol over a real SOCK_SEQPACKET pair from pair(): the kernel's
// SCM_RIGHTS, MSG_TRUNC and MSG_CTRUNC are what is tested, not a model of them. Several count
// the fds of this process in /proc/self/fd to prove that a refused message leaves none behind,
// so none of them is parallel (parallel tests run only once every serial one has finished).

// testPair returns both ends of pair() as UnixConns, closed at the end of the test.
func testPair(t *testing.T) (keeperEnd, daemonEnd *net.UnixConn) {
	t.Helper()
	k, d, err := pair()
	if err != nil {
		t.Fatal(err)
	}
	dc, err := fileConn(d, "daemon")
	if err != nil {
		k.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close(); dc.Close() })
	return k, dc
}

// testPipe returns a pipe's read and write ends, closed at the end of the test.
func testPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// openFds counts this process's open fds.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the fd ReadDir itself had open
}

func names(n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = json.RawMessage(`"fd"`)
	}
	return out
}

// A record's fds arrive as new fds of the same pipe: what is written into the received copy of
// the write end comes out of the sender's read end.
func TestSendRecvRoundTrip(t *testing.T) {
	k, d := testPair(t)
	r, w := testPipe(t)
	m := msg{Op: opPut, Key: "run/1", Info: json.RawMessage(`{"app":"a"}`), Names: []json.RawMessage{json.RawMessage(`"stdin"`)}}
	if err := send(d, m, []int{int(w.Fd())}); err != nil {
		t.Fatal(err)
	}
	buf, oob := recvBuffers()
	got, fds, err := recv(k, buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	if got.Op != opPut || got.Key != "run/1" || string(got.Info) != `{"app":"a"}` || len(got.Names) != 1 || string(got.Names[0]) != `"stdin"` {
		t.Fatalf("got %+v", got)
	}
	if len(fds) != 1 || fds[0] == int(w.Fd()) {
		t.Fatalf("fds %v: want one new fd", fds)
	}
	if fl, _ := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Error("a received fd is not CLOEXEC: the daemon's apps would inherit it")
	}
	if _, err := unix.Write(fds[0], []byte("ping")); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[0])
	b := make([]byte, 4)
	if _, err := r.Read(b); err != nil || string(b) != "ping" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// The kernel takes at most SCM_MAX_FD (253) fds in one sendmsg: that many go through, one more
// is refused by send before the kernel is asked.
func TestSendMaxFds(t *testing.T) {
	k, d := testPair(t)
	_, w := testPipe(t)
	fds := make([]int, MaxFds+1)
	for i := range fds {
		fds[i] = int(w.Fd())
	}
	err := send(d, msg{Op: opPut, Key: "k", Names: names(MaxFds + 1)}, fds)
	if err == nil || !strings.Contains(err.Error(), "at most 253") {
		t.Fatalf("send of %d fds: %v", MaxFds+1, err)
	}
	before := openFds(t)
	if err := send(d, msg{Op: opPut, Key: "k", Names: names(MaxFds)}, fds[:MaxFds]); err != nil {
		t.Fatalf("send of %d fds: %v", MaxFds, err)
	}
	buf, oob := recvBuffers()
	_, got, err := recv(k, buf, oob)
	if err != nil || len(got) != MaxFds {
		t.Fatalf("recv: %d fds, %v", len(got), err)
	}
	closeAll(got)
	if after := openFds(t); after != before {
		t.Fatalf("%d fds open before, %d after", before, after)
	}
}

// A receiver whose control buffer holds fewer fds than came gets MSG_CTRUNC: the message is
// refused and the fds that did fit are closed (the kernel closes the rest). With no room at all
// none come; CmsgSpace(4) rounds up to room for two, which do come and must be closed.
func TestRecvCtrunc(t *testing.T) {
	for _, room := range []int{0, 1} {
		k, d := testPair(t)
		_, w := testPipe(t)
		before := openFds(t)
		fd := int(w.Fd())
		if err := send(d, msg{Op: opPut, Key: "k", Names: names(3)}, []int{fd, fd, fd}); err != nil {
			t.Fatal(err)
		}
		buf, _ := recvBuffers()
		oob := make([]byte, 0)
		if room > 0 {
			oob = make([]byte, unix.CmsgSpace(room*4))
		}
		_, fds, err := recv(k, buf, oob)
		if err == nil || !strings.Contains(err.Error(), "MSG_CTRUNC") {
			t.Fatalf("room for %d fds: err %v", room, err)
		}
		if fds != nil {
			t.Fatalf("fds %v returned with an error", fds)
		}
		if after := openFds(t); after != before {
			t.Fatalf("room for %d fds: %d fds open before, %d after: the fds that came leak", room, before, after)
		}
	}
}

// A message larger than the receiver's buffer is refused (MSG_TRUNC), its fds closed; and send
// refuses a message over maxMsg, which no receiver's buffer would hold.
func TestRecvTrunc(t *testing.T) {
	k, d := testPair(t)
	_, w := testPipe(t)
	before := openFds(t)
	if err := send(d, msg{Op: opPut, Key: strings.Repeat("k", 100), Names: names(1)}, []int{int(w.Fd())}); err != nil {
		t.Fatal(err)
	}
	_, oob := recvBuffers()
	_, fds, err := recv(k, make([]byte, 64), oob)
	if err == nil || !strings.Contains(err.Error(), "MSG_TRUNC") || fds != nil {
		t.Fatalf("err %v, fds %v", err, fds)
	}
	if after := openFds(t); after != before {
		t.Fatalf("%d fds open before, %d after", before, after)
	}

	big := json.RawMessage(`"` + strings.Repeat("x", maxMsg) + `"`)
	if err := send(d, msg{Op: opPut, Key: "k", Info: big}, nil); err == nil || !strings.Contains(err.Error(), "is over") {
		t.Fatalf("send of a message over maxMsg: %v", err)
	}
}

// recv refuses fds that do not match what the message says: a put naming another count, and fds
// riding on a message that carries none. Either way the fds are closed.
func TestRecvFdsMismatch(t *testing.T) {
	k, d := testPair(t)
	_, w := testPipe(t)
	fd := int(w.Fd())
	buf, oob := recvBuffers()
	for _, c := range []struct {
		m    msg
		fds  []int
		want string
	}{
		{msg{Op: opPut, Key: "k", Names: names(1)}, []int{fd, fd}, "names 1 fds and 2 came"},
		{msg{Op: opPut, Key: "k", Names: names(2)}, []int{fd}, "names 2 fds and 1 came"},
		{msg{Op: opRecord, Key: "k", Names: names(1)}, nil, "names 1 fds and 0 came"},
		{msg{Op: opServing}, []int{fd}, "1 fds with a serving message"},
		{msg{Op: opHello, Version: Version}, []int{fd, fd}, "2 fds with a hello message"},
	} {
		before := openFds(t)
		if err := send(d, c.m, c.fds); err != nil {
			t.Fatal(err)
		}
		_, fds, err := recv(k, buf, oob)
		if err == nil || !strings.Contains(err.Error(), c.want) || fds != nil {
			t.Errorf("%s with %d fds: err %v, fds %v; want %q", c.m.Op, len(c.fds), err, fds, c.want)
		}
		if after := openFds(t); after != before {
			t.Errorf("%s with %d fds: %d fds open before, %d after", c.m.Op, len(c.fds), before, after)
		}
	}
	// The channel goes on after a refused message.
	if err := send(d, msg{Op: opServing}, nil); err != nil {
		t.Fatal(err)
	}
	if m, _, err := recv(k, buf, oob); err != nil || m.Op != opServing {
		t.Fatalf("after the refusals: %+v, %v", m, err)
	}
}

// A peer that has closed its end reads as errEOF, with or without a deadline pending; a
// deadline that passes is another error.
func TestRecvEOF(t *testing.T) {
	k, d := testPair(t)
	buf, oob := recvBuffers()
	_ = k.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := recv(k, buf, oob); err == nil || errors.Is(err, errEOF) {
		t.Fatalf("a live but silent peer: %v; want a timeout", err)
	}
	_ = k.SetReadDeadline(time.Now().Add(5 * time.Second))
	d.Close()
	if _, _, err := recv(k, buf, oob); !errors.Is(err, errEOF) {
		t.Fatalf("a closed peer: %v; want errEOF", err)
	}
}

// checkPeer accepts a peer of our own uid, the only one a socketpair of ours can have.
func TestCheckPeerOwnUid(t *testing.T) {
	k, d := testPair(t)
	if err := checkPeer(k); err != nil {
		t.Fatal(err)
	}
	if err := checkPeer(d); err != nil {
		t.Fatal(err)
	}
}

// checkPeer refuses a peer of another uid, and so does a daemon's Connect. As root, this
// thread alone takes another effective uid while it makes the pair (SO_PEERCRED is its maker's).
func TestCheckPeerOtherUid(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to make a socket as another user")
	}
	runtime.LockOSThread() // never unlocked if the uid cannot be restored: the thread then dies
	if err := unix.Setresuid(-1, 65534, -1); err != nil {
		runtime.UnlockOSThread()
		t.Skipf("setresuid: %v", err)
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if rerr := unix.Setresuid(-1, 0, -1); rerr != nil {
		t.Fatalf("restore the uid: %v", rerr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	c, err := fileConn(sp[0], "other")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := checkPeer(c); err == nil || !strings.Contains(err.Error(), "refused a peer of uid 65534") {
		t.Fatalf("checkPeer: %v", err)
	}
	if l, _, err := Connect(sp[1], discard); l != nil || err == nil || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("Connect to a keeper of another uid: %v", err)
	}
}
