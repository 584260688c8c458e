package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/httpload"
	"github.com/tend-sh/tend/internal/testutil"
)

// FreePort returns a TCP port free on 127.0.0.1 a moment ago.
func FreePort(t *testing.T) int { return testutil.FreePort(t) }

// ListenTimeout is the --listen-timeout (ms) of cluster apps whose tests send requests once
// they are online. Online must mean listening there: with the default (3 s), an instance that
// has not listened yet is marked online anyway (PM2's rule), which a loaded machine reaches (a
// node starting in over 3 s), and the test's first requests are refused.
const ListenTimeout = "60000"

// StartCluster starts app as n instances with PORT set to a free port, and returns the address.
// It is online once every instance listens.
func (h *Harness) StartCluster(app string, n int, env ...string) string {
	h.T.Helper()
	port := FreePort(h.T)
	if r := h.RunEnv(append([]string{"PORT=" + strconv.Itoa(port)}, env...), "start", app, "-i", strconv.Itoa(n), "--listen-timeout", ListenTimeout, "-s"); r.Code != 0 {
		h.T.Fatalf("start: exit %d: %s", r.Code, r.Err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// Instances returns the named app's instances from jlist, by pm_id.
func (h *Harness) Instances(name string) []Proc {
	h.T.Helper()
	var out []Proc
	for _, p := range h.Jlist() {
		if p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

// WaitOnline waits until the app has n instances, all online.
func (h *Harness) WaitOnline(name string, n int) []Proc {
	h.T.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last []Proc
	for time.Now().Before(deadline) {
		last = h.Instances(name)
		online := 0
		for _, p := range last {
			if p.Pm2Env.Status == "online" && p.Pid > 0 {
				online++
			}
		}
		if online == n && len(last) == n {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.T.Fatalf("app %q: want %d instances online, have %+v", name, n, last)
	return nil
}

// LoadDuring runs f under new-connection load from 16 clients and returns what the load saw.
func LoadDuring(t *testing.T, addr string, f func()) *httpload.Result {
	t.Helper()
	return LoadWith(t, httpload.Loop, addr, f)
}

// LoadServed is how many answers the load gets before f and after it: twice as many as it has
// clients, so that each client has had its turn (on a slow machine this takes longer, rather
// than being a fixed time that a slow machine fills with fewer requests).
const LoadServed = 32

// LoadWith runs f under loop's load (Loop or KeepAliveLoop) from 16 clients.
func LoadWith(t *testing.T, loop func(context.Context, string, int) (*httpload.Result, func()), addr string, f func()) *httpload.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res, wait := loop(ctx, addr, 16)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wait()
		}
	}
	defer stop() // also when f fails the test
	served := func() {
		// Not fatal: when the load is not served (every request fails), the caller's counts say
		// so better than a timeout would.
		from := res.OK.Load()
		Poll(15*time.Second, func() bool { return res.OK.Load() >= from+LoadServed })
	}
	served()
	f()
	served()
	stop()
	return res
}
