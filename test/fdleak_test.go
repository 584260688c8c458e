package test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

// fdCycles is how many start/stop/reload cycles TestDaemonFdsDoNotLeak runs.
const fdCycles = 100

// The daemon's open fds after many start/stop/reload cycles are what they were before (in the
// style of os/exec's fd-leak checks): every pipe, IPC end, pidfd, slot socket and log file a
// run opens is closed when the run ends. Fork mode, a Go app in cluster mode with --port
// (LISTEN_FDS and slot sockets) and, when node is installed, a Node cluster app (handles passed
// over IPC).
func TestDaemonFdsDoNotLeak(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	port := e2e.FreePort(t)
	h.OK("start", e2e.AppBin, "--name", "fork", "-s")
	h.OK("start", e2e.AppBin, "--name", "web", "-i", "2", "--port", strconv.Itoa(port), "-s", "--", "-serve", "-ready-after", "10ms")
	_, err := exec.LookPath("node")
	node := err == nil
	if node {
		h.StartCluster(e2e.WriteApp(t, t.TempDir(), "hello.js", e2e.HelloJS), 1)
	}
	data, err := os.ReadFile(filepath.Join(h.Home, "daemon.pid"))
	if err != nil {
		t.Fatal(err)
	}
	dpid, _ := strconv.Atoi(strings.TrimSpace(string(data)))

	// One cycle: a rolling reload of the cluster app, a stop and a start of the fork-mode app;
	// every few cycles a stop and start of the cluster app (its sockets closed and opened
	// again), a delete and a new start (log files), a reload of the Node app.
	cycle := func(i int) {
		h.OK("reload", "web", "-s")
		h.OK("stop", "fork", "-s")
		h.OK("start", "fork", "-s")
		if i%5 == 0 && node {
			h.OK("reload", "hello", "-s")
		}
		if i%5 == 2 {
			h.OK("stop", "web", "-s")
			h.OK("start", "web", "-s")
		}
		if i%10 == 7 {
			h.OK("delete", "fork", "-s")
			h.OK("start", e2e.AppBin, "--name", "fork", "-s")
		}
	}
	// A first round of every kind, so that what the daemon opens once and keeps (its notify
	// socket, a cache, a connection pool) is in the baseline.
	for _, i := range []int{0, 2, 7} {
		cycle(i)
	}
	h.WaitOnline("web", 2)
	base := e2e.SettledFds(t, dpid)
	begin := time.Now()
	peak := len(base)
	for i := range fdCycles {
		cycle(i)
		peak = max(peak, len(e2e.DaemonFds(dpid)))
	}
	took := time.Since(begin)
	h.WaitOnline("web", 2)
	var now map[string]string
	if !e2e.Poll(10*time.Second, func() bool { now = e2e.DaemonFds(dpid); return len(now) <= len(base) }) {
		t.Fatalf("after %d cycles the daemon has %d fds open, %d before (peak %d); new: %s",
			fdCycles, len(now), len(base), peak, fdDiff(base, now))
	}
	t.Logf("%d start/stop/reload cycles in %s: daemon fds %d before, %d after (peak %d during the cycles)",
		fdCycles, took.Round(time.Millisecond), len(base), len(now), peak)
}

// daemonFds lists the open fds of pid: fd number → what it points at (socket:[…], pipe:[…], a
// path, anon_inode:[pidfd]…).
// fdDiff describes how now differs from base: counts by kind, and the targets now holds more
// often than base did (a leaked dup shows as one socket held many times).
func fdDiff(base, now map[string]string) string {
	count := func(fds map[string]string, key func(string) string) map[string]int {
		c := map[string]int{}
		for _, target := range fds {
			c[key(target)]++
		}
		return c
	}
	same := func(s string) string { return s }
	hadKind, hasKind := count(base, kindOf), count(now, kindOf)
	had, has := count(base, same), count(now, same)
	var kinds, more []string
	for _, k := range slices.Sorted(maps.Keys(hasKind)) {
		if hasKind[k] != hadKind[k] {
			kinds = append(kinds, fmt.Sprintf("%s %d → %d", k, hadKind[k], hasKind[k]))
		}
	}
	targets := slices.Collect(maps.Keys(has))
	slices.SortFunc(targets, func(a, b string) int { return (has[b] - had[b]) - (has[a] - had[a]) }) // most first
	for _, target := range targets {
		if n := has[target] - had[target]; n > 0 && len(more) < 10 {
			more = append(more, fmt.Sprintf("%s ×%d", target, n))
		}
	}
	return strings.Join(kinds, ", ") + "; more of: " + strings.Join(more, ", ")
}

// kindOf names the kind of an fd's target: socket, pipe, anon_inode:[pidfd], or the file's path
// without its numbers (so that a.log and a-1.log count apart from sockets, not one by one).
func kindOf(target string) string {
	if i := strings.Index(target, ":["); i >= 0 && !strings.HasPrefix(target, "anon_inode") {
		return target[:i]
	}
	return target
}
