package faults

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

// 200 clients that send half a request do not hold the daemon: it answers others meanwhile,
// and closes each of them within its request timeout (10 s). A body over the daemon's bound is
// refused at its header.
func TestAPIHalfOpenConnections(t *testing.T) {
	t.Parallel()
	const fault = "200 half-open API connections"
	h := e2e.New(t)
	h.OK("start", e2e.AppBin, "--name", "steady", "-s")
	sock := filepath.Join(h.Home, "tend.sock")
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
	jlistStart := time.Now()
	if !strings.Contains(h.OK("jlist"), `"steady"`) {
		t.Error("jlist with 200 half-open connections")
	}
	jlistTook := time.Since(jlistStart)
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
	late := 0
	if last > 20*time.Second {
		late = len(conns)
	}
	lost(t, fault, int64(late), "connections held past 20 s")

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
	allowed(t, fault, "jlist answered in %v meanwhile; the last closed by the daemon after %v (request timeout 10 s)",
		jlistTook.Round(time.Millisecond), last.Round(100*time.Millisecond))
}

// A thousand CLI calls at once, as a fleet of scripts and monitors makes: every one answers,
// right, and the app they ask about is untouched.
func TestConcurrentCLICalls(t *testing.T) {
	t.Parallel()
	n := scale(250, 1000) // 1,000 CLI processes at once take both cores for 2 s: the full run
	fault := fmt.Sprintf("%d concurrent CLI calls", n)
	h := e2e.New(t)
	h.OK("start", e2e.AppBin, "--name", "calm", "-s")
	calm := h.WaitStatus("calm", "online")
	verbs := [][]string{{"jlist"}, {"ls"}, {"describe", "calm"}, {"ping"}, {"pid", "calm"}}
	var (
		wg      sync.WaitGroup
		failed  atomic.Int64
		slowest atomic.Int64
		firstMu sync.Mutex
		first   string
	)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := verbs[i%len(verbs)]
			began := time.Now()
			r := h.Run(args...)
			for d := int64(time.Since(began)); ; {
				old := slowest.Load()
				if d <= old || slowest.CompareAndSwap(old, d) {
					break
				}
			}
			if r.Code != 0 || !strings.Contains(r.Out, wantIn(args[0], calm.Pid)) {
				failed.Add(1)
				firstMu.Lock()
				if first == "" {
					first = fmt.Sprintf("tend %s: exit %d, stdout %.200q, stderr %.200q", strings.Join(args, " "), r.Code, r.Out, r.Err)
				}
				firstMu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if first != "" {
		t.Log("first failure:", first)
	}
	lost(t, fault, failed.Load(), fmt.Sprintf("calls failed or answered wrong of %d", n))
	if p, _ := h.Get("calm"); p.Pid != calm.Pid {
		lost(t, fault, 1, "restart of the app")
	}
	allowed(t, fault, "all answered within %v; the slowest call %v", took.Round(time.Millisecond), time.Duration(slowest.Load()).Round(time.Millisecond))
}

// wantIn is what a verb's answer must contain.
func wantIn(verb string, pid int) string {
	switch verb {
	case "ping":
		return "pong"
	case "pid", "describe", "jlist":
		return strconv.Itoa(pid)
	}
	return "calm"
}
