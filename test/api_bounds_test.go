package test

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// 200 clients that send half a request do not hold the daemon: it answers others meanwhile,
// and closes each of them within its request timeout (10 s). A body over the daemon's bound is
// refused at its header.
func TestAPIHalfOpenConnections(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("start", appBin, "--name", "steady", "-s")
	sock := filepath.Join(h.home, "tend.sock")
	var conns []net.Conn
	for range 200 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v1/apps HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"apps\":")
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if !strings.Contains(h.ok("jlist"), `"steady"`) {
		t.Error("jlist with 200 half-open connections")
	}
	var wg sync.WaitGroup
	closed := make(chan time.Duration, len(conns))
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			io.Copy(io.Discard, c) // until the daemon closes it
			closed <- time.Since(start)
		}()
	}
	wg.Wait()
	close(closed)
	var last time.Duration
	for d := range closed {
		last = max(last, d)
	}
	if last > 20*time.Second {
		t.Errorf("the last half-open connection was closed after %s", last)
	}

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/apps HTTP/1.1\r\nContent-Length: %d\r\n\r\n", 64<<20)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(c)
	if !strings.Contains(string(answer), "400") || !strings.Contains(string(answer), "at most") {
		t.Errorf("a 64 MB body: %q", answer)
	}
}
