package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func listener(t *testing.T) (int, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	return fd, net.JoinHostPort("127.0.0.1", itoa(sa.(*unix.SockaddrInet4).Port))
}

func itoa(n int) string { return (&net.TCPAddr{Port: n}).String()[1:] }

// echo serves a line back with its name in front.
func echo(t *testing.T, name string) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, name+":"+line)
			}()
		}
	}()
	return l.Addr().String(), func() { l.Close() }
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "hi\n")
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestRelayTakesTurnsAndSkipsDeadBackends(t *testing.T) {
	p := New(slog.New(slog.DiscardHandler))
	defer p.Close()
	fd, addr := listener(t)
	if err := p.Serve(fd); err != nil {
		t.Fatal(err)
	}
	a, stopA := echo(t, "a")
	b, stopB := echo(t, "b")
	defer stopB()
	p.Set(0, a)
	p.Set(1, b)
	got := map[string]int{}
	for range 10 {
		got[ask(t, addr)]++
	}
	if got["a:hi\n"] != 5 || got["b:hi\n"] != 5 {
		t.Fatalf("two backends in turn: %v", got)
	}
	// A backend that died before its instance was taken out: the proxy tries the next one.
	stopA()
	for range 6 {
		if r := ask(t, addr); r != "b:hi\n" {
			t.Fatalf("with a dead backend: %q", r)
		}
	}
	p.Remove(1, "not-b") // a stale remove changes nothing
	if r := ask(t, addr); r != "b:hi\n" {
		t.Fatalf("after a stale remove: %q", r)
	}
	// The relay counts a connection down just after the client has seen its end.
	deadline := time.Now().Add(5 * time.Second)
	for p.Active(b) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := p.Active(b); n != 0 {
		t.Fatalf("no connection is being relayed, yet Active says %d", n)
	}
}
