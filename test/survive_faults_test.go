package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

// The daemon killed in the middle of a command: the next one finishes or rolls back what that
// one was doing, and leaves no process it does not know.

// appProcs lists the live processes of this test whose command line contains substr.
func (h *harness) appProcs(substr string) []int {
	var out []int
	for _, pid := range h.Marked() {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		argv0, _, _ := strings.Cut(string(cmd), "\x00")
		if strings.Contains(string(cmd), substr) && argv0 != h.Bin {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// waitSettled waits until every instance is online or stopped/errored, and the processes
// running substr are exactly the online instances' pids: nothing untracked, nothing missing.
func (h *harness) waitSettled(substr string) []proc {
	h.T.Helper()
	var ps []proc
	var running []int
	ok := e2e.Poll(30*time.Second, func() bool {
		ps = h.Jlist()
		var online []int
		for _, p := range ps {
			switch p.Pm2Env.Status {
			case "online":
				online = append(online, p.Pid)
			case "stopped", "errored":
			default:
				return false
			}
		}
		slices.Sort(online)
		running = h.appProcs(substr)
		return slices.Equal(online, running)
	})
	if !ok {
		h.T.Fatalf("not settled: jlist %s; processes running %s: %v", e2e.DescribePids(ps), substr, running)
	}
	return ps
}

// killDaemonWhen kills the daemon with SIGKILL once cond holds, and waits for the next one.
func (h *harness) killDaemonWhen(what string, cond func() bool) {
	h.T.Helper()
	h.ExpectLogError("keeper: the daemon died")
	e2e.WaitUntil(h.T, 30*time.Second, what, cond)
	h.KillDaemon()
}

func TestDaemonKilledDuringReload(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	addr := h.StartCluster(e2e.WriteApp(t, t.TempDir(), "slow.js", e2e.SlowJS), 2)
	h.WaitOnline("slow", 2)
	res := e2e.LoadDuring(t, addr, func() {
		reload := newCmd(h, "reload", "slow")
		startBackground(t, reload)
		// Killed once the first replacement runs beside the two old ones.
		h.killDaemonWhen("a replacement started", func() bool { return len(h.appProcs("slow.js")) >= 3 })
		waitCmd(reload, 30*time.Second)
		ps := h.waitSettled("slow.js")
		if len(ps) != 2 {
			t.Errorf("%d instances after the interrupted reload: %s", len(ps), e2e.DescribePids(ps))
		}
	})
	t.Logf("daemon killed during a reload under load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 {
		t.Errorf("%d failed, %d refused; the next daemon drains the old workers as the reload would have", res.Failed.Load(), res.Refused.Load())
	}
}

func TestDaemonKilledDuringScale(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	addr := h.StartCluster(e2e.WriteApp(t, t.TempDir(), "hello.js", e2e.HelloJS), 1)
	h.WaitOnline("hello", 1)
	res := e2e.LoadDuring(t, addr, func() {
		scale := newCmd(h, "scale", "hello", "4")
		startBackground(t, scale)
		h.killDaemonWhen("a new instance started", func() bool { return len(h.appProcs("hello.js")) >= 2 })
		waitCmd(scale, 30*time.Second)
		ps := h.waitSettled("hello.js")
		t.Logf("after the interrupted scale: %s", e2e.DescribePids(ps))
	})
	t.Logf("daemon killed during a scale under load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Refused.Load() != 0 {
		t.Errorf("%d connections refused", res.Refused.Load())
	}
	// Every slot that is left is served: a request on each new connection is answered.
	if got := spread(t, addr, 20); len(got) == 0 {
		t.Error("nothing serves after the interrupted scale")
	}
}

func TestDaemonKilledDuringStartOf200Apps(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var apps []map[string]any
	for i := range 200 {
		apps = append(apps, map[string]any{"name": "a" + strconv.Itoa(i), "script": e2e.AppBin})
	}
	cfg, _ := json.Marshal(map[string]any{"apps": apps})
	path := filepath.Join(t.TempDir(), "apps.json")
	os.WriteFile(path, cfg, 0o644)
	start := newCmd(h, "start", path)
	startBackground(t, start)
	h.killDaemonWhen("50 apps running", func() bool { return len(h.appProcs(filepath.Base(e2e.AppBin))) >= 50 })
	waitCmd(start, 30*time.Second)
	ps := h.waitSettled(filepath.Base(e2e.AppBin))
	t.Logf("daemon killed during a start of 200 apps: %d apps kept by the next daemon, %d processes running", len(ps), len(h.appProcs(filepath.Base(e2e.AppBin))))
}
