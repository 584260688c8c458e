package sockets

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRegistryClaims(t *testing.T) {
	r := NewRegistry()
	if err := r.Claim("a", "", 3000); err != nil {
		t.Fatal(err)
	}
	if err := r.Claim("a", "127.0.0.1", 3000); err != nil {
		t.Fatalf("an app may listen twice on its own port: %v", err)
	}
	err := r.Claim("b", "127.0.0.1", 3000)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), `app "a"`) {
		t.Fatalf("another app on an overlapping address: %v", err)
	}
	if err := r.Claim("b", "10.1.2.3", 3001); err != nil {
		t.Fatal(err)
	}
	if err := r.Claim("c", "10.9.9.9", 3001); err != nil {
		t.Fatalf("two specific addresses do not overlap: %v", err)
	}
	r.Release("a", "", 3000)
	r.Release("a", "127.0.0.1", 3000)
	if err := r.Claim("b", "", 3000); err != nil {
		t.Fatalf("after a released it: %v", err)
	}
}

func acceptOne(t *testing.T, fd int) bool {
	t.Helper()
	for range 200 {
		c, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err == nil {
			unix.Close(c)
			return true
		}
		if err != unix.EAGAIN {
			t.Fatal(err)
		}
		pollWait()
	}
	return false
}

func pollWait() { unix.Poll(nil, 5) }

func TestSetSlotsAndRelease(t *testing.T) {
	reg := NewRegistry()
	s := NewSet("web", reg, nil)
	// listen(0) in two instances: one port, a socket each.
	fd0, port, _, err := s.Dup(Key{Host: "127.0.0.1"}, 0, []byte(`{"ticketKeys":"ab"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd1, port1, echo, err := s.Dup(Key{Host: "127.0.0.1"}, 1, []byte(`{"ticketKeys":"cd"}`))
	if err != nil {
		t.Fatal(err)
	}
	if port == 0 || port1 != port {
		t.Fatalf("listen(0) must give every instance the same port: %d and %d", port, port1)
	}
	if string(echo) != `{"ticketKeys":"ab"}` {
		t.Fatalf("the first instance's server data is echoed to all (TLS ticket keys): %s", echo)
	}
	if err := reg.Claim("other", "", port); !errors.Is(err, ErrInUse) {
		t.Fatalf("the picked port must be claimed: %v", err)
	}

	// Only live slots get connections.
	s.SetLive(1, true)
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !acceptOne(t, fd1) {
		t.Fatal("the live slot got nothing")
	}

	// The dups are the instances' copies; once they and the set are closed, the port is free.
	unix.Close(fd0)
	unix.Close(fd1)
	s.Close()
	if _, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port))); err == nil {
		t.Fatal("a closed set must hold no socket")
	}
	if err := reg.Claim("other", "", port); err != nil {
		t.Fatalf("a closed set releases its ports: %v", err)
	}
}

func TestSetPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	reg := NewRegistry()
	s := NewSet("web", reg, nil)
	if _, err := s.Open([]Key{{Host: "127.0.0.1", Port: port}}, 0); !errors.Is(err, ErrInUse) {
		t.Fatalf("a port another program holds: %v", err)
	}
	if err := reg.Claim("x", "127.0.0.1", port); err != nil {
		t.Fatalf("a failed open must not keep its claim: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Queued counts connections in a slot's accept queue, which a scale down waits to be empty.
func TestSetQueued(t *testing.T) {
	s := NewSet("q", NewRegistry(), nil)
	defer s.Close()
	fd, port, _, err := s.Dup(Key{Host: "127.0.0.1"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if n := s.Queued(0); n != 0 {
		t.Fatalf("queued %d before any client", n)
	}
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
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
	if n := s.Queued(0); n != 3 {
		t.Fatalf("queued %d, want the 3 connected clients", n)
	}
	for range 3 {
		if !acceptOne(t, fd) {
			t.Fatal("nothing to accept")
		}
	}
	if n := s.Queued(0); n != 0 || s.Queued(7) != 0 {
		t.Fatalf("queued %d after accepting them", n)
	}
}

// An app that asks for a new socket again and again gets MaxPorts of them, then an error, and
// the daemon's fds are spared.
func TestSetPortCap(t *testing.T) {
	s := NewSet("hungry", NewRegistry(), nil)
	defer s.Close()
	for n := range MaxPorts {
		fd, _, _, err := s.Dup(Key{Host: "127.0.0.1", N: n}, 0, nil)
		if err != nil {
			t.Fatalf("socket %d: %v", n, err)
		}
		unix.Close(fd)
	}
	if _, _, _, err := s.Dup(Key{Host: "127.0.0.1", N: MaxPorts}, 0, nil); !errors.Is(err, ErrTooManyPorts) {
		t.Fatalf("socket %d: %v, want ErrTooManyPorts", MaxPorts+1, err)
	}
	// One it has already is still given.
	fd, _, _, err := s.Dup(Key{Host: "127.0.0.1", N: 3}, 0, nil)
	if err != nil {
		t.Fatalf("a socket it has: %v", err)
	}
	unix.Close(fd)
}
