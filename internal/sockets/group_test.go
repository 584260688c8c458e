package sockets

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// spread opens n connections to the group and reports how many each slot accepted.
func spread(t *testing.T, g *Group, n int) []int {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", g.Port()), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	slots := g.Slots()
	got := make([]int, len(slots))
	deadline := time.Now().Add(5 * time.Second)
	total := 0
	for total < n && time.Now().Before(deadline) {
		for i, s := range slots {
			for {
				fd, _, err := unix.Accept4(s.Fd(), unix.SOCK_CLOEXEC)
				if err != nil {
					break
				}
				unix.Close(fd)
				got[i]++
				total++
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if total != n {
		t.Fatalf("accepted %d of %d connections: %v", total, n, got)
	}
	return got
}

func newGroup(t *testing.T, slots int) *Group {
	t.Helper()
	g := NewGroup("127.0.0.1", 0)
	for range slots {
		s, err := g.Add()
		if err != nil {
			t.Fatal(err)
		}
		if err := g.SetLive(s, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close(s) })
	}
	return g
}

func TestSpreadOverLiveSlots(t *testing.T) {
	g := newGroup(t, 2)
	got := spread(t, g, 300)
	for i, n := range got {
		if n < 75 {
			t.Fatalf("slot %d got %d of 300 connections (%v); each should get at least 25%%", i, n, got)
		}
	}
	flags, _ := unix.FcntlInt(uintptr(g.Slots()[0].Fd()), unix.F_GETFL, 0)
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("slot sockets must be non-blocking")
	}
}

func TestDeadSlotIsExcluded(t *testing.T) {
	g := newGroup(t, 3)
	slots := g.Slots()
	if err := g.SetLive(slots[1], false); err != nil {
		t.Fatal(err)
	}
	got := spread(t, g, 200)
	if got[1] != 0 || got[0] == 0 || got[2] == 0 {
		t.Fatalf("the dead slot must get nothing, the others something: %v", got)
	}
	g.SetLive(slots[1], true)
	if got := spread(t, g, 300); got[1] == 0 {
		t.Fatalf("a slot made live again must get connections: %v", got)
	}
}

// A slot closed before the end of the kernel's array stays in it as a spare, so no index moves
// under the steering program; it gets no connection, live slots or none, and goes when it is
// last or is reused.
func TestClosedSlotStaysASpare(t *testing.T) {
	g := newGroup(t, 3)
	a, b, c := g.Slots()[0], g.Slots()[1], g.Slots()[2]
	g.SetLive(c, false)
	if err := g.Close(a); err != nil {
		t.Fatal(err)
	}
	if slots := g.Slots(); len(slots) != 3 || slots[0] != a || slots[1] != b || slots[2] != c {
		t.Fatal("a slot closed before the end must keep its place")
	}
	if got := spread(t, g, 200); got[0] != 0 || got[1] != 200 || got[2] != 0 {
		t.Fatalf("only b is live: a, b, c got %v", got)
	}
	g.SetLive(b, false)
	if got := spread(t, g, 200); got[0] != 0 {
		t.Fatalf("with no live slot, connections wait on b and c, never on the spare a: %v", got)
	}

	if s, err := g.Add(); err != nil || s != a {
		t.Fatalf("Add must reuse the spare: %v", err)
	}
	g.Close(a)
	if err := g.Close(c); err != nil {
		t.Fatal(err)
	}
	if slots := g.Slots(); len(slots) != 2 || slots[0] != a || slots[1] != b {
		t.Fatal("closing the last slot closes it, and only spares behind it")
	}
	if err := g.Close(b); err != nil {
		t.Fatal(err)
	}
	if len(g.Slots()) != 0 {
		t.Fatal("closing the last owned slot closes the spares before it")
	}
	if err := Probe("127.0.0.1", g.Port()); err != nil {
		t.Fatalf("a group whose slots all closed holds no socket: %v", err)
	}
}

// Closing a slot while connections arrive never sends one to a slot that is not live: it would
// be reset when that slot closes in turn. The survivor is last in the array, the case where a
// close used to move it under a program that still pointed at its old place (TestClusterScale's
// rare failed request on 3 → 1).
func TestCloseUnderLoadNeverFeedsADeadSlot(t *testing.T) {
	for round := range 50 {
		g := NewGroup("127.0.0.1", 0)
		var a, b, c *Slot
		for _, p := range []**Slot{&a, &b, &c} {
			s, err := g.Add()
			if err != nil {
				t.Fatal(err)
			}
			g.SetLive(s, true)
			*p = s
		}
		g.SetLive(a, false)
		g.SetLive(b, false)
		var dialed atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", g.Port()), time.Second); err == nil {
						conn.Close()
					}
					dialed.Add(1)
				}
			})
		}
		awaitDials := func(n int64) {
			for dialed.Load() < n {
				runtime.Gosched()
			}
		}
		awaitDials(20)
		g.Close(a)
		awaitDials(dialed.Load() + 20)
		close(stop)
		wg.Wait()
		n := 0
		for {
			fd, _, err := unix.Accept4(b.Fd(), unix.SOCK_CLOEXEC)
			if err != nil {
				break
			}
			unix.Close(fd)
			n++
		}
		g.Close(c)
		g.Close(b)
		if n > 0 {
			t.Fatalf("round %d: %d connections reached a slot that is not live", round, n)
		}
	}
}

func TestProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := Probe("127.0.0.1", port); !errors.Is(err, ErrInUse) {
		t.Fatalf("a port another program listens on: %v", err)
	}
	l.Close()
	if err := Probe("127.0.0.1", port); err != nil {
		t.Fatalf("a free port: %v", err)
	}
	// A reuseport holder (an orphan of another manager) is found too.
	g := newGroup(t, 1)
	if err := Probe("127.0.0.1", g.Port()); !errors.Is(err, ErrInUse) {
		t.Fatalf("a port a reuseport group holds: %v", err)
	}
	if err := Probe("not-an-ip", 80); err == nil {
		t.Fatal("a bad address must be refused")
	}
}

func TestSteeringProgram(t *testing.T) {
	if p := steering(nil); len(p) != 1 || p[0].K != 0xffffffff {
		t.Fatalf("no live slot: fall back to the kernel's hash, got %+v", p)
	}
	p := steering([]uint32{0, 2})
	if len(p) != 4+2*2+1 || p[4].K != 0 || p[5].K != 0 || p[6].K != 1 || p[7].K != 2 {
		t.Fatalf("program %+v", p)
	}
}

func TestDualStackLikeNode(t *testing.T) {
	g := NewGroup("", 0)
	s, err := g.Add()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(s)
	g.SetLive(s, true)
	if got := spread(t, g, 5); got[0] != 5 {
		t.Fatalf("IPv4 clients of a [::] group: %v", got)
	}
}
