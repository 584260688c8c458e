package sockets

import (
	"errors"
	"fmt"
	"net"
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

// After a close the kernel moves the last socket into the hole; the steering must follow.
func TestCloseKeepsSteeringTrue(t *testing.T) {
	g := newGroup(t, 3)
	a, b, c := g.Slots()[0], g.Slots()[1], g.Slots()[2]
	g.SetLive(c, false)
	if err := g.Close(a); err != nil {
		t.Fatal(err)
	}
	slots := g.Slots()
	if len(slots) != 2 || slots[0] != c || slots[1] != b {
		t.Fatalf("after closing the first of a, b, c the order must be c, b")
	}
	got := spread(t, g, 200)
	if got[0] != 0 || got[1] != 200 {
		t.Fatalf("only b is live: c got %d, b got %d", got[0], got[1])
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
