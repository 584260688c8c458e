package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

func TestStartStopRestartDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	out := h.OK("start", e2e.AppBin, "--name", "api")
	if !strings.Contains(out, "api") || !strings.Contains(out, "online") {
		t.Fatalf("start should print the table with api online:\n%s", out)
	}
	p, _ := h.Get("api")
	if p.Pm2Env.Status != "online" || p.Pid <= 0 || !e2e.PidAlive(p.Pid) {
		t.Fatalf("after start: status %q pid %d", p.Pm2Env.Status, p.Pid)
	}
	if p.Pm2Env.ExecMode != "fork_mode" || p.Pm2Env.Instances != 1 || p.Pm2Env.PmExecPath != e2e.AppBin ||
		p.Pm2Env.Namespace != "default" || p.Pm2Env.NodeAppInstance == nil || p.Pm2Env.ExecInterpreter != "none" ||
		p.Pm2Env.PmUptime == 0 || p.Pm2Env.CreatedAt == 0 {
		t.Fatalf("jlist fields wrong: %+v", p.Pm2Env)
	}
	if want := filepath.Join(h.Home, "logs", "api-out.log"); p.Pm2Env.PmOutLogPath != want {
		t.Fatalf("out log %q, want %q", p.Pm2Env.PmOutLogPath, want)
	}
	if want := filepath.Join(h.Home, "logs", "api-error.log"); p.Pm2Env.PmErrLogPath != want {
		t.Fatalf("err log %q, want %q", p.Pm2Env.PmErrLogPath, want)
	}
	old := p.Pid

	h.OK("stop", "api")
	p, _ = h.Get("api")
	if p.Pm2Env.Status != "stopped" || p.Pid != 0 || e2e.PidAlive(old) {
		t.Fatalf("after stop: status %q pid %d, old pid alive %v", p.Pm2Env.Status, p.Pid, e2e.PidAlive(old))
	}

	h.OK("start", "api") // by name: starts the stopped app
	p = h.WaitStatus("api", "online")
	if p.Pid == old {
		t.Fatal("start by name did not start a new process")
	}

	if p.Pm2Env.RestartTime != 0 {
		t.Fatalf("start of a stopped app is not a restart (PM2), restart_time %d", p.Pm2Env.RestartTime)
	}
	h.OK("restart", "0") // by id
	p2, _ := h.Get("api")
	if p2.Pid == p.Pid || p2.Pm2Env.RestartTime != 1 || p2.Pm2Env.Status != "online" {
		t.Fatalf("after restart: pid %d (was %d), restarts %d, status %q", p2.Pid, p.Pid, p2.Pm2Env.RestartTime, p2.Pm2Env.Status)
	}

	h.OK("start", e2e.AppBin, "--name", "api", "-s") // a name that runs: restarted
	p3, _ := h.Get("api")
	if p3.Pid == p2.Pid || p3.PmID != p2.PmID {
		t.Fatalf("start of a running name should restart it in place: pid %d→%d id %d→%d", p2.Pid, p3.Pid, p2.PmID, p3.PmID)
	}

	r := h.Run("start", "sleep", "--name", "api") // another script under a running name
	if r.Code != 2 || !strings.Contains(r.Err, `an app named "api" already runs `+e2e.AppBin) {
		t.Fatalf("name clash: exit %d, %q", r.Code, r.Err)
	}
	r = h.Run("start", "api", "-i", "2") // a flag that is not a setting of an app is refused
	if r.Code != 2 || !strings.Contains(r.Err, "takes an app's settings, not --instances") {
		t.Fatalf("flags with a name: exit %d, %q", r.Code, r.Err)
	}
	if p4, _ := h.Get("api"); p4.Pid != p3.Pid {
		t.Fatal("a refused start changed the app")
	}
	h.OK("start", "api", "--kill-timeout", "4000", "-s") // settings: applied, as PM2 does, and restarted
	p3 = h.WaitFor("api", 10*time.Second, "restarted with kill_timeout 4000", func(p proc) bool {
		return p.Pid != p3.Pid && p.Pid > 0 && h.Pm2Env(p.PmID)["kill_timeout"] == 4000.0
	})

	h.OK("delete", "api")
	if _, ok := h.Get("api"); ok || e2e.PidAlive(p3.Pid) {
		t.Fatal("delete left the app in the list or its process alive")
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.RunEnv([]string{"PORT=3123"}, "start", e2e.AppBin, "--name", "envy", "-s", "--", "-print-env", "PORT,pm_id,name,NODE_APP_INSTANCE")
	if r.Code != 0 {
		t.Fatalf("start: %s", r.Err)
	}
	p, _ := h.Get("envy")
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool {
		return strings.Contains(s, "PORT=3123 (set=true)") && strings.Contains(s, "pm_id=0 (set=true)") &&
			strings.Contains(s, "name=envy (set=true)") && strings.Contains(s, "NODE_APP_INSTANCE=0 (set=true)")
	})
}

func TestStdinIsAPipe(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "fd.sh")
	os.WriteFile(script, []byte("readlink /proc/self/fd/0\nexec sleep 30\n"), 0o644)
	h.OK("start", script, "-s")
	p, _ := h.Get("fd")
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "pipe:") })
}

func TestCrashLoopEndsErrored(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ExpectLogError("too many unstable restarts")
	h.OK("start", e2e.AppBin, "--name", "crash", "--max-restarts", "3", "-s", "--", "-exit-after", "20ms", "-code", "3")
	p := h.WaitStatus("crash", "errored")
	if p.Pm2Env.RestartTime != 2 || p.Pid != 0 || p.Pm2Env.ExitCode == nil || *p.Pm2Env.ExitCode != 3 {
		t.Fatalf("errored app: restarts %d (want 2), pid %d, exit code %v", p.Pm2Env.RestartTime, p.Pid, p.Pm2Env.ExitCode)
	}
	// Not a wait for a condition: a window in which a restart, were one wrongly scheduled
	// (restart_delay is 0), would show.
	time.Sleep(500 * time.Millisecond)
	if q, _ := h.Get("crash"); q.Pm2Env.Status != "errored" || q.Pm2Env.RestartTime != 2 {
		t.Fatalf("an errored app must not be restarted: %+v", q.Pm2Env)
	}
}

func TestAutorestartAndStopExitCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "once", "--no-autorestart", "-s", "--", "-exit-after", "50ms")
	h.OK("start", e2e.AppBin, "--name", "coded", "--stop-exit-codes", "7", "-s", "--", "-exit-after", "50ms", "-code", "7")
	h.OK("start", e2e.AppBin, "--name", "again", "--min-uptime", "10ms", "--restart-delay", "100", "-s", "--", "-exit-after", "50ms")
	for _, n := range []string{"once", "coded"} {
		p := h.WaitStatus(n, "stopped")
		if p.Pm2Env.RestartTime != 0 {
			t.Fatalf("%s restarted %d times", n, p.Pm2Env.RestartTime)
		}
	}
	h.WaitFor("again", 10*time.Second, "3 restarts", func(p proc) bool { return p.Pm2Env.RestartTime >= 3 })
}

func TestStopKillsWholeTree(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// The grandchild calls setsid, so a process-group kill alone would miss it; the app ignores
	// SIGINT, so only SIGKILL after kill_timeout ends it.
	h.OK("start", e2e.AppBin, "--name", "tree", "--kill-timeout", "300", "-s", "--", "-grandchild", "-ignore", "INT")
	p, _ := h.Get("tree")
	out := e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "child=") })
	gc, _ := strconv.Atoi(regexp.MustCompile(`child=(\d+)`).FindStringSubmatch(out)[1])
	if !e2e.PidAlive(gc) {
		t.Fatal("grandchild not running")
	}
	start := time.Now()
	h.OK("stop", "tree", "-s")
	took := time.Since(start)
	if e2e.PidAlive(p.Pid) || e2e.PidAlive(gc) {
		t.Fatalf("after stop: app alive %v, setsid grandchild alive %v", e2e.PidAlive(p.Pid), e2e.PidAlive(gc))
	}
	if took < 300*time.Millisecond {
		t.Fatalf("stop returned after %s, before kill_timeout: SIGINT should have been ignored", took)
	}
}

func TestGracefulStopSignal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "polite", "--kill-signal", "SIGTERM", "-s", "--", "-on-signal", "bye", "-ignore", "INT", "-ready")
	p := h.WaitAppReady("polite") // online at spawn; the SIGTERM handler comes a moment later
	h.OK("stop", "polite", "-s")
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 2*time.Second, func(s string) bool { return strings.Contains(s, "bye\n") })
	q, _ := h.Get("polite")
	if q.Pm2Env.ExitCode == nil || *q.Pm2Env.ExitCode != 0 {
		t.Fatalf("a graceful stop should end with exit code 0, got %v", q.Pm2Env.ExitCode)
	}
}

func TestSendSignalAndPid(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "sig", "-s", "--", "-on-signal", "got it", "-ready")
	// A fork-mode app is online at spawn: signalled before it installs its handler, it would
	// just die of SIGTERM. The app says when the handler is in place.
	p := h.WaitAppReady("sig")
	if got := strings.TrimSpace(h.OK("pid", "sig")); got != strconv.Itoa(p.Pid) {
		t.Fatalf("pid printed %q, want %d", got, p.Pid)
	}
	h.OK("sendSignal", "SIGTERM", "sig")
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 2*time.Second, func(s string) bool { return strings.Contains(s, "got it") })
	h.WaitFor("sig", 5*time.Second, "a restart", func(q proc) bool { return q.Pm2Env.RestartTime == 1 && q.Pm2Env.Status == "online" })
}

func TestCommandLineAndPathLookup(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", "sleep 30", "--name", "shell", "-s")
	h.OK("start", "sleep", "--name", "onpath", "-s", "--", "30")
	for _, n := range []string{"shell", "onpath"} {
		p := h.WaitStatus(n, "online")
		if n == "shell" && p.Pm2Env.ExecInterpreter != "bash" {
			t.Fatalf("a command line should run through bash, got %q", p.Pm2Env.ExecInterpreter)
		}
	}
}

func TestKillEmptiesAndNextDaemonIsEmpty(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "k", "-s")
	p, _ := h.Get("k")
	pidBefore, _ := os.ReadFile(filepath.Join(h.Home, "daemon.pid"))
	h.OK("kill")
	if e2e.PidAlive(p.Pid) {
		t.Fatal("kill left the app running")
	}
	if _, err := os.Stat(filepath.Join(h.Home, "tend.sock")); err == nil {
		t.Fatal("kill left the socket")
	}
	if ps := h.Jlist(); len(ps) != 0 {
		t.Fatalf("the daemon after kill should be empty, has %d", len(ps))
	}
	pidAfter, _ := os.ReadFile(filepath.Join(h.Home, "daemon.pid"))
	if string(pidBefore) == string(pidAfter) {
		t.Fatal("no new daemon after kill")
	}
}

func TestDaemonCrashKeepsApps(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ExpectLogError("keeper: the daemon died")
	h.OK("start", e2e.AppBin, "--name", "survivor", "-s")
	h.OK("start", e2e.AppBin, "--name", "resting", "-s")
	h.OK("stop", "resting", "-s")
	h.ExpectLogError("too many unstable restarts") // broken
	h.OK("start", e2e.AppBin, "--name", "broken", "--max-restarts", "1", "-s", "--", "-exit-after", "1ms")
	h.WaitStatus("broken", "errored")
	p, _ := h.Get("survivor")
	data, _ := os.ReadFile(filepath.Join(h.Home, "daemon.pid"))
	dpid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	// The registry is written in batches: the crash must come after it records all three.
	h.WaitRegistry(map[string]string{"survivor": "online", "resting": "stopped", "broken": "errored"})
	syscall.Kill(dpid, syscall.SIGKILL)
	// The keeper starts the next daemon by itself: no command from anyone.
	e2e.WaitUntil(t, 10*time.Second, "a new daemon", func() bool {
		data, _ := os.ReadFile(filepath.Join(h.Home, "daemon.pid"))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return pid != dpid && pid > 0 && e2e.PidAlive(pid)
	})
	q := h.WaitStatus("survivor", "online")
	if q.PmID != p.PmID || q.Pid != p.Pid || q.Pm2Env.RestartTime != p.Pm2Env.RestartTime {
		t.Fatalf("adopted app: id %d (was %d), pid %d (was %d), restarts %d (was %d)", q.PmID, p.PmID, q.Pid, p.Pid, q.Pm2Env.RestartTime, p.Pm2Env.RestartTime)
	}
	if r, _ := h.Get("resting"); r.Pm2Env.Status != "stopped" {
		t.Fatalf("a stopped app must stay stopped after a daemon crash, got %q", r.Pm2Env.Status)
	}
	if r, _ := h.Get("broken"); r.Pm2Env.Status != "errored" {
		t.Fatalf("an errored app must stay errored after a daemon crash, got %q", r.Pm2Env.Status)
	}
}

func TestEcosystemJSON(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	cfg := `{"apps": [
	  {"name": "one", "script": "` + e2e.AppBin + `", "args": "-print-env GREETING", "env": {"GREETING": "hi"}},
	  {"name": "two", "script": "` + e2e.AppBin + `", "args": ["-print-env", "NODE_APP_INSTANCE"], "instances": 2, "cwd": "` + dir + `", "watch": true}
	]}`
	path := filepath.Join(dir, "apps.json")
	os.WriteFile(path, []byte(cfg), 0o644)
	r := h.Run("start", path, "-s")
	if r.Code != 0 || r.Err != "" {
		t.Fatalf("start: exit %d, %q", r.Code, r.Err)
	}
	if two, _ := h.Get("two"); h.Pm2Env(two.PmID)["watch"] != true {
		t.Error("watch: true in the config, and jlist's watch is not true")
	}
	ps := h.Jlist()
	if len(ps) != 3 {
		t.Fatalf("want 3 instances, got %d", len(ps))
	}
	one, _ := h.Get("one")
	var raw []map[string]any
	json.Unmarshal([]byte(h.OK("jlist")), &raw)
	if env := raw[0]["pm2_env"].(map[string]any); env["GREETING"] != "hi" {
		t.Fatalf("PM2 copies env to the top of pm2_env; .pm2_env.GREETING = %v", env["GREETING"])
	}
	e2e.WaitFile(t, one.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "GREETING=hi") })
	seen := map[int]bool{}
	for _, p := range ps {
		if p.Name == "two" {
			seen[*p.Pm2Env.NodeAppInstance] = true
			if p.Pm2Env.ExecMode != "fork_mode" || p.Pm2Env.Instances != 2 {
				t.Fatalf("two: mode %s instances %d", p.Pm2Env.ExecMode, p.Pm2Env.Instances)
			}
			if want := filepath.Join(h.Home, "logs", fmt.Sprintf("two-out-%d.log", p.PmID)); p.Pm2Env.PmOutLogPath != want {
				t.Fatalf("each instance of a multi-instance app logs apart (PM2): %s, want %s", p.Pm2Env.PmOutLogPath, want)
			}
		}
	}
	if !seen[0] || !seen[1] {
		t.Fatalf("instances of two should be 0 and 1: %v", seen)
	}
}

// PM2's environment keys with real processes: increment_var and instance_var per instance,
// append_env_to_name with --env, filter_env keeping the caller's secrets out, and `restart
// <name> --update-env` taking the caller's new environment, without a variable it no longer has.
func TestEcosystemEnvKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	cfg := `{"apps": [
	  {"name": "inc", "script": "` + e2e.AppBin + `", "args": "-print-env PORT,WORKER,MODE", "instances": 2,
	   "increment_var": "PORT", "instance_var": "WORKER", "env": {"PORT": 4000}, "env_production": {"MODE": "prod"},
	   "append_env_to_name": true},
	  {"name": "filt", "script": "` + e2e.AppBin + `", "args": "-print-env SECRET_X,KEEP,OLDV", "filter_env": ["SECRET_"]}
	]}`
	path := filepath.Join(dir, "apps.json")
	os.WriteFile(path, []byte(cfg), 0o644)
	if r := h.RunEnv([]string{"SECRET_X=s", "KEEP=k1", "OLDV=1"}, "start", path, "--env", "production", "-s"); r.Code != 0 {
		t.Fatalf("start: exit %d: %s", r.Code, r.Err)
	}
	seen := map[string]bool{}
	for _, p := range h.Jlist() {
		if p.Name == "filt" {
			continue
		}
		if p.Name != "inc-production" {
			t.Fatalf("append_env_to_name: app named %q", p.Name)
		}
		// The instance number is under the instance_var's name, as PM2 writes it.
		i := int(h.Pm2Env(p.PmID)["WORKER"].(float64))
		want := fmt.Sprintf("PORT=%d (set=true)\nWORKER=%d (set=true)\nMODE=prod (set=true)", 4000+i, i)
		e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, want) })
		seen[want] = true
		// tend env shows what the process got, per-instance variables included, as PM2's does.
		if env := h.OK("env", fmt.Sprint(p.PmID)); !strings.Contains(env, fmt.Sprintf("PORT: %d\n", 4000+i)) ||
			!strings.Contains(env, fmt.Sprintf("WORKER: %d\n", i)) || !strings.Contains(env, fmt.Sprintf("pm_id: %d\n", p.PmID)) {
			t.Errorf("tend env %d:\n%s", p.PmID, env)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("want two distinct instances, saw %v", seen)
	}
	// The environment is the app's: one instance of two cannot take another.
	for _, p := range h.Jlist() {
		if p.Name == "inc-production" {
			h.OneLineError(2, `--update-env changes app "inc-production"'s environment`, "restart", fmt.Sprint(p.PmID), "--update-env")
			break
		}
	}
	f := h.WaitStatus("filt", "online")
	e2e.WaitFile(t, f.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool {
		return strings.Contains(s, "SECRET_X= (set=false)\nKEEP=k1 (set=true)\nOLDV=1 (set=true)")
	})
	if r := h.RunEnv([]string{"SECRET_X=s", "KEEP=k2"}, "restart", "filt", "--update-env", "-s"); r.Code != 0 {
		t.Fatalf("restart --update-env: exit %d: %s", r.Code, r.Err)
	}
	e2e.WaitFile(t, f.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool {
		return strings.Contains(s, "SECRET_X= (set=false)\nKEEP=k2 (set=true)\nOLDV= (set=false)")
	})
	// Without --update-env a restart keeps the environment the app has.
	h.RunEnv([]string{"KEEP=k3"}, "restart", "filt", "-s")
	if p := h.WaitFor("filt", 5*time.Second, "restarted twice", func(p proc) bool { return p.Pm2Env.RestartTime >= 2 && p.Pm2Env.Status == "online" }); p.Pm2Env.Env["KEEP"] != "k2" {
		t.Fatalf("a restart without --update-env changed KEEP to %q", p.Pm2Env.Env["KEEP"])
	}
}

// send writes a line to the app's stdin, as PM2's send does.
func TestSendWritesStdin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "echo", "-s", "--", "-echo-stdin")
	p := h.WaitStatus("echo", "online")
	h.OK("send", "echo", "hello", "world")
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "stdin=hello world") })
	h.OK("stop", "echo", "-s")
	if r := h.Run("send", "echo", "x"); r.Code == 0 || strings.Count(strings.TrimSpace(r.Err), "\n") != 0 {
		t.Errorf("send to a stopped app: exit %d, stderr %q; want one line and a failure", r.Code, r.Err)
	}
}

// An errored app is tried again after its cooldown, which doubles: ls and jlist say when.
func TestErroredIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ExpectLogError("too many unstable restarts")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "apps.json")
	os.WriteFile(cfg, []byte(`{"apps": [{"name": "crash", "script": "`+e2e.AppBin+`", "args": "-exit-after 10ms -code 1",
		"max_restarts": 2, "errored_retry": "1s"}]}`), 0o644)
	h.OK("start", cfg, "-s")
	first := h.WaitFor("crash", 10*time.Second, "errored with a retry", func(p proc) bool {
		return p.Pm2Env.Status == "errored" && p.Pm2Env.RetryAt > 0
	})
	if ls := h.OK("ls"); !strings.Contains(ls, "errored, retry in") {
		t.Fatalf("ls does not say when it is retried:\n%s", ls)
	}
	// Tried again: it crashes twice more and is errored again, with a cooldown twice as long.
	again := h.WaitFor("crash", 15*time.Second, "errored again after the retry", func(p proc) bool {
		return p.Pm2Env.Status == "errored" && p.Pm2Env.RetryAt > first.Pm2Env.RetryAt && p.Pm2Env.RestartTime > first.Pm2Env.RestartTime
	})
	log, _ := os.ReadFile(filepath.Join(h.Home, "tend.log"))
	if !strings.Contains(string(log), "trying again after its cooldown") || !strings.Contains(string(log), "retry_in=2s") {
		t.Fatalf("tend.log does not show the retry and the doubled cooldown; restarts %d", again.Pm2Env.RestartTime)
	}
	// A new daemon starts the cooldown again: the errored app is not left errored for good.
	h.ExpectLogError("keeper: the daemon died")
	h.KillDaemon()
	h.WaitFor("crash", 10*time.Second, "errored with a retry under the new daemon", func(p proc) bool {
		return p.Pm2Env.Status == "errored" && p.Pm2Env.RetryAt > 0
	})
	h.OK("stop", "crash", "-s")
	if p, _ := h.Get("crash"); p.Pm2Env.RetryAt != 0 {
		t.Fatal("a stopped app still has a retry time")
	}
}
