package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

// kill -9 of one instance after another, under load: tend starts each again, and the socket it
// holds keeps taking connections meanwhile, so none is refused. A request the killed process
// had already accepted dies with it; nothing else may fail. The app's policy restarts it every
// time: by default, 16 deaths in a row within a second of their start error an instance (PM2's
// max_restarts), and more than 16 starts a minute back off (start_limit_burst), which this loop
// would reach and which loses nothing either.
func TestKill9InstancesInALoop(t *testing.T) {
	t.Parallel()
	kills := scale(10, 200)
	fault := fmt.Sprintf("kill -9 an instance ×%d under load", kills)
	h := e2e.New(t)
	port := e2e.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "web.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{"apps": [{"name": "web", "script": %q, "args": ["-serve", "-ready-after", "0s"],
		"instances": 2, "port": %d, "listen_timeout": %s, "max_restarts": 1000000, "start_limit_burst": 0}]}`, e2e.AppBin, port, e2e.ListenTimeout)), 0o644)
	h.OK("start", cfg, "-s")
	h.WaitOnline("web", 2)
	res := e2e.LoadDuring(t, fmt.Sprintf("127.0.0.1:%d", port), func() {
		for i := range kills {
			victim := h.Instances("web")[i%2]
			syscall.Kill(victim.Pid, syscall.SIGKILL)
			e2e.WaitUntil(t, 10*time.Second, "a new process online after kill -9", func() bool {
				for _, p := range h.Instances("web") {
					if p.PmID == victim.PmID {
						return p.Pid != victim.Pid && p.Pid != 0 && p.Pm2Env.Status == "online"
					}
				}
				return false
			})
		}
	})
	total := res.OK.Load() + res.Failed.Load() + res.Refused.Load()
	lost(t, fault, res.Refused.Load(), fmt.Sprintf("refused connections of %d requests", total))
	allowed(t, fault, "%d requests failed that a killed process had accepted", res.Failed.Load())
	restarts := 0
	for _, p := range h.WaitOnline("web", 2) {
		restarts += p.Pm2Env.RestartTime
	}
	lost(t, fault, int64(kills-restarts), fmt.Sprintf("kills not counted in restart_time (%d counted)", restarts))
}

// A frozen instance (SIGSTOP, as a debugger or a swapped-out process is) does not hold tend:
// stop ends it within kill_timeout (SIGKILL reaches a stopped process), and a reload replaces
// it within drain_timeout and kill_timeout.
func TestFrozenInstance(t *testing.T) {
	t.Parallel()
	const fault = "SIGSTOP an instance, then stop and reload"
	h := e2e.New(t)
	h.OK("start", e2e.AppBin, "--name", "frozen", "--kill-timeout", "500", "-s")
	p := h.WaitStatus("frozen", "online")
	if err := syscall.Kill(p.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.OK("stop", "frozen", "-s")
	stopTook := time.Since(start)
	if stopTook > 10*time.Second {
		t.Errorf("stop of a frozen process took %s (kill_timeout 500 ms)", stopTook)
	}
	outlived := 0
	if e2e.PidAlive(p.Pid) {
		outlived++
	}

	port := e2e.FreePort(t)
	h.OK("start", e2e.AppBin, "--name", "frozen-web", "-i", "2", "--port", strconv.Itoa(port), "--kill-timeout", "500",
		"--drain-timeout", "1000", "--listen-timeout", e2e.ListenTimeout, "-s", "--", "-serve")
	old := h.WaitOnline("frozen-web", 2)
	if err := syscall.Kill(old[0].Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	h.OK("reload", "frozen-web", "-s")
	reloadTook := time.Since(start)
	if reloadTook > 20*time.Second {
		t.Errorf("reload with a frozen instance took %s (drain 1 s, kill 500 ms; it must not wait for listen_timeout, 60 s)", reloadTook)
	}
	for _, q := range h.WaitOnline("frozen-web", 2) {
		if slices.ContainsFunc(old, func(o e2e.Proc) bool { return o.Pid == q.Pid }) {
			t.Errorf("instance %d kept its process %d after the reload", q.PmID, q.Pid)
		}
	}
	if e2e.PidAlive(old[0].Pid) {
		outlived++
	}
	lost(t, fault, int64(outlived), "frozen processes outlived their stop or reload")
	allowed(t, fault, "stop took %v (kill_timeout 500 ms), reload %v (drain 1 s + kill 500 ms)",
		stopTook.Round(time.Millisecond), reloadTook.Round(time.Millisecond))
}

// Many apps crash in a loop at once: the daemon restarts them with its back-off, answers the
// CLI meanwhile, and an app that does not crash serves on untouched.
func TestCrashLoopers(t *testing.T) {
	t.Parallel()
	n := scale(20, 50) // the short run shares the machine with the other packages' tests
	span := time.Duration(scale(5, 30)) * time.Second
	fault := fmt.Sprintf("%d apps crash-looping at once for %v", n, span)
	h := e2e.New(t)
	h.ExpectLogError("too many unstable restarts")
	port := e2e.FreePort(t)
	h.OK("start", e2e.AppBin, "--name", "steady", "-i", "2", "--port", strconv.Itoa(port), "--listen-timeout", e2e.ListenTimeout, "-s", "--", "-serve", "-ready-after", "0s")
	steady := h.WaitOnline("steady", 2)
	apps := ""
	for i := range n {
		if i > 0 {
			apps += ","
		}
		apps += fmt.Sprintf(`{"name": "crash%d", "script": %q, "args": ["-exit-after", "20ms", "-code", "1"]}`, i, e2e.AppBin)
	}
	cfg := filepath.Join(t.TempDir(), "crash.json")
	if err := os.WriteFile(cfg, []byte(`{"apps": [`+apps+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var slowest time.Duration
	calls := 0
	res := e2e.LoadDuring(t, fmt.Sprintf("127.0.0.1:%d", port), func() {
		h.OK("start", cfg)
		deadline := time.Now().Add(span)
		for time.Now().Before(deadline) {
			start := time.Now()
			h.Jlist()
			slowest = max(slowest, time.Since(start))
			calls++
		}
	})
	restarts := 0
	for _, p := range h.Jlist() {
		if p.Name != "steady" {
			restarts += p.Pm2Env.RestartTime
		}
	}
	start := time.Now()
	h.OK("delete", "/^crash/", "-s")
	deleteTook := time.Since(start)
	total := res.OK.Load() + res.Failed.Load() + res.Refused.Load()
	lost(t, fault, res.Failed.Load()+res.Refused.Load(), fmt.Sprintf("failed requests of %d to the app beside them", total))
	moved := 0
	for _, p := range h.Instances("steady") {
		if !slices.ContainsFunc(steady, func(s e2e.Proc) bool { return s.Pid == p.Pid }) {
			moved++
		}
	}
	lost(t, fault, int64(moved), "restarts of the app beside them")
	allowed(t, fault, "%d restarts; %d jlist calls meanwhile, the slowest %v; deleting them took %v",
		restarts, calls, slowest.Round(time.Millisecond), deleteTook.Round(time.Millisecond))
}
