package test

import (
	"encoding/json"
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

// statuses maps each app name to its instances' statuses, in id order.
func (h *harness) statuses() map[string][]string {
	out := map[string][]string{}
	for _, p := range h.Jlist() {
		out[p.Name] = append(out[p.Name], p.Pm2Env.Status)
	}
	return out
}

// PM2's selectors with real processes (PM2's operate-regex.sh, cli-actions-2.sh and
// piped-config.sh do the same): /regex/ over names, a script's path, several targets at once,
// and - for a config on stdin.
func TestPM2Selectors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "app.js")
	e2e.WriteApp(t, dir, "app.js", "setInterval(() => {}, 1000)\n")
	for _, n := range []string{"echo-1", "echo-2", "echo-3"} {
		h.OK("start", e2e.AppBin, "--name", n, "-s")
	}
	h.OK("start", script, "-s") // named app, running app.js

	// PM2: stop /echo-[1,2]/ stops two apps; the others run on.
	h.OK("stop", "/echo-[1,2]/", "-s")
	if got := h.statuses(); got["echo-1"][0] != "stopped" || got["echo-2"][0] != "stopped" || got["echo-3"][0] != "online" {
		t.Fatalf("after stop /echo-[1,2]/: %v", got)
	}
	if r := h.Run("stop", "/^nope/"); r.Code == 0 || !strings.Contains(r.Err, "no app name matches /^nope/") {
		t.Fatalf("stop /^nope/: exit %d, stderr %q", r.Code, r.Err)
	}
	// A script's path, relative to where tend runs, as PM2 resolves it.
	cmd := exec.Command(h.Bin, "stop", "app.js", "-s")
	cmd.Env, cmd.Dir = h.Env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stop app.js: %v: %s", err, out)
	}
	h.WaitStatus("app", "stopped")
	// Several targets at once.
	h.OK("restart", "echo-1", "echo-2", "-s")
	h.WaitStatus("echo-1", "online")
	h.WaitStatus("echo-2", "online")
	// A config on stdin.
	r := h.RunIO(nil, strings.NewReader(`{"apps": [{"name": "echo-3", "script": "`+e2e.AppBin+`"}]}`), "delete", "-", "-s")
	if r.Code != 0 {
		t.Fatalf("delete -: exit %d, stderr %q", r.Code, r.Err)
	}
	if got := h.statuses(); got["echo-3"] != nil {
		t.Fatalf("delete - left echo-3: %v", got)
	}
}

// PM2's verbs with real processes: reset, id, prettylist, start of several scripts, and the
// exit codes of an action on nothing.
func TestPM2Verbs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	a := e2e.WriteApp(t, dir, "a.js", "setInterval(() => {}, 1000)\n")
	b := e2e.WriteApp(t, dir, "b.js", "setInterval(() => {}, 1000)\n")

	// An action on all with nothing to act on fails, as PM2's does (right-exit-code.sh).
	for _, args := range [][]string{{"restart", "all"}, {"stop", "all"}, {"delete", "10"}, {"restart", "nope"}} {
		if r := h.Run(args...); r.Code == 0 {
			t.Errorf("tend %s on an empty list: exit 0", strings.Join(args, " "))
		}
	}

	// start a.js b.js starts both (multiparam.sh).
	h.OK("start", a, b, "-s")
	h.WaitStatus("a", "online")
	h.WaitStatus("b", "online")

	// restart counts, and reset sets the counters back to 0 (reset.sh).
	h.OK("restart", "a", "-s")
	h.WaitFor("a", 10*time.Second, "restart_time 1", func(p proc) bool { return p.Pm2Env.RestartTime == 1 })
	h.OK("reset", "a", "-s")
	h.WaitFor("a", 10*time.Second, "restart_time 0", func(p proc) bool { return p.Pm2Env.RestartTime == 0 })

	// id prints the ids as PM2 does.
	if out := h.OK("id", "b"); out != "[ 1 ]\n" {
		t.Errorf("id b: %q, want %q", out, "[ 1 ]\n")
	}
	if out := h.OK("id", "nope"); out != "[]\n" {
		t.Errorf("id nope: %q, want %q", out, "[]\n")
	}

	// prettylist: what PM2's e2e scripts grep in it.
	pl := h.OK("prettylist")
	for _, want := range []string{"status: 'online'", "restart_time: 0", "exec_mode: 'fork_mode'", "name: 'a'", "NODE_APP_INSTANCE: 0",
		"watch: false", "node_args: []", "versioning: null", "axm_actions: []", "axm_monitor: {}", "pm_pid_path: '", "vizion: true"} {
		if !strings.Contains(pl, want) {
			t.Errorf("prettylist lacks %q", want)
		}
	}
	if n := strings.Count(pl, "'online'"); n != 2 {
		t.Errorf("prettylist has 'online' %d times, want one per process (2)", n)
	}
	if strings.HasSuffix(pl, "\n") {
		t.Error("prettylist ends with a newline; PM2's does not")
	}

	if out := h.OK("--version"); strings.Contains(out, "tend") || strings.Count(out, "\n") != 1 {
		t.Errorf("--version: %q, want the bare version", out)
	}
	names := []string{}
	for _, p := range h.Jlist() {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("apps %v", names)
	}
	// Once the list is empty, ids start from 0 again, as in PM2 (cli-actions-2.sh deletes id 0).
	h.OK("delete", "all", "-s")
	h.OK("start", a, "-s")
	if ps := h.Jlist(); len(ps) != 1 || ps[0].PmID != 0 {
		t.Errorf("after delete all and a start: %+v", ps)
	}
}

// Pid files as PM2 writes them: $TEND_HOME/pids/<name>-<id>.pid, or -p's path with -<id> before
// the extension (PM2's cli-actions-1.sh); jlist's pm_pid_path names it; a stop removes it.
func TestPidFiles(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	h.OK("start", e2e.AppBin, "--name", "plain", "-s")
	cmd := exec.Command(h.Bin, "start", e2e.AppBin, "--name", "echo", "-p", "echo.pid", "-s")
	cmd.Env, cmd.Dir = h.Env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start -p: %v: %s", err, out)
	}
	for name, path := range map[string]string{"plain": filepath.Join(h.Home, "pids", "plain-0.pid"), "echo": filepath.Join(dir, "echo-1.pid")} {
		p := h.WaitStatus(name, "online")
		b, err := os.ReadFile(path)
		if err != nil || string(b) != strconv.Itoa(p.Pid) {
			t.Fatalf("%s: pid file %s holds %q (%v), want %d", name, path, b, err, p.Pid)
		}
		if got := h.Pm2Env(p.PmID)["pm_pid_path"]; got != path {
			t.Errorf("%s: pm_pid_path %q, want %q", name, got, path)
		}
	}
	h.OK("stop", "echo", "-s")
	if _, err := os.Stat(filepath.Join(dir, "echo-1.pid")); !os.IsNotExist(err) {
		t.Errorf("the pid file outlived the stop: %v", err)
	}
}

// PM2_PID_FILE_PATH, PM2's variable for its daemon's pid file, gets the daemon's pid too
// (PM2's daemon-paths-override.sh).
func TestDaemonPidFileFromPM2Variable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), ".toto.pid")
	if r := h.RunEnv([]string{"PM2_PID_FILE_PATH=" + path}, "ls"); r.Code != 0 {
		t.Fatalf("ls: exit %d: %s", r.Code, r.Err)
	}
	b, err := os.ReadFile(path)
	own, _ := os.ReadFile(filepath.Join(h.Home, "daemon.pid"))
	if err != nil || strings.TrimSpace(string(b)) != strings.TrimSpace(string(own)) {
		t.Fatalf("%s holds %q (%v); daemon.pid holds %q", path, b, err, own)
	}
}

// --log-type json: each line of the log files is a JSON object with PM2's fields (PM2's
// log-json.sh parses them).
func TestLogTypeJSON(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "js", "--log-type", "json", "-s", "--", "-flood", "3")
	p := h.WaitStatus("js", "online")
	text := e2e.WaitFile(t, filepath.Join(h.Home, "logs", "js-out.log"), 10*time.Second, func(s string) bool { return strings.Count(s, "\n") >= 3 })
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		var rec struct {
			Message   string `json:"message"`
			Timestamp string `json:"timestamp"`
			Type      string `json:"type"`
			ProcessID *int   `json:"process_id"`
			AppName   string `json:"app_name"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %q: %v", i+1, l, err)
		}
		if !strings.HasSuffix(rec.Message, "\n") || rec.Type != "out" || rec.ProcessID == nil || *rec.ProcessID != p.PmID ||
			rec.AppName != "js" || !strings.HasSuffix(rec.Timestamp, "Z") {
			t.Fatalf("line %d: %+v", i+1, rec)
		}
	}
}

// Scale-down removes what PM2 removes, the lowest ids first; a later scale-up takes the
// instance numbers they freed (PM2's increment-var.sh).
func TestScaleDownAsPM2(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "w", "-i", "4", "-s")
	h.WaitOnline("w", 4)
	instances := func() map[int]int {
		out := map[int]int{}
		for _, p := range h.Jlist() {
			if p.Pm2Env.NodeAppInstance != nil {
				out[p.PmID] = *p.Pm2Env.NodeAppInstance
			}
		}
		return out
	}
	h.OK("scale", "w", "2", "-s")
	h.WaitOnline("w", 2)
	if got := instances(); len(got) != 2 || got[2] != 2 || got[3] != 3 {
		t.Fatalf("after scale 2, id → instance: %v, want ids 2 and 3 (instances 2, 3)", got)
	}
	h.OK("scale", "w", "4", "-s")
	h.WaitOnline("w", 4)
	got := instances()
	seen := map[int]bool{}
	for _, n := range got {
		seen[n] = true
	}
	if len(got) != 4 || !seen[0] || !seen[1] || !seen[2] || !seen[3] {
		t.Fatalf("after scale 4, id → instance: %v, want instances 0 to 3", got)
	}
}

// With TEND_HOME at PM2's folder (~/.pm2), the daemon's pid is in pm2.pid too, where PM2's
// scripts read it (kill `cat ~/.pm2/pm2.pid`).
func TestPM2PidInPM2Home(t *testing.T) {
	t.Parallel()
	home := filepath.Join(t.TempDir(), ".pm2")
	run := func(args ...string) string {
		cmd := exec.Command(e2e.TendBin, args...)
		cmd.Env = append(os.Environ(), "TEND_HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tend %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	run("ls")
	t.Cleanup(func() { run("kill") })
	own, _ := os.ReadFile(filepath.Join(home, "daemon.pid"))
	if b, err := os.ReadFile(filepath.Join(home, "pm2.pid")); err != nil || string(b) != strings.TrimSpace(string(own)) {
		t.Fatalf("pm2.pid holds %q (%v); daemon.pid %q", b, err, own)
	}
}

// An env value a config gives as a number or a boolean shows so in prettylist (PM2's
// increment-var.sh greps PORT: 3000), while the app gets it as a string, as every variable.
func TestTypedEnvInPrettylist(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := filepath.Join(t.TempDir(), "apps.json")
	os.WriteFile(cfg, []byte(`{"apps": [{"name": "typed", "script": "`+e2e.AppBin+`", "args": ["-print-env", "N,ON"], "env": {"N": 7, "ON": true}}]}`), 0o644)
	h.OK("start", cfg, "-s")
	p := h.WaitStatus("typed", "online")
	pl := h.OK("prettylist")
	for _, want := range []string{"N: 7,", "ON: true,"} {
		if strings.Count(pl, want) != 2 { // in env and at the top of pm2_env, as PM2 has them
			t.Errorf("prettylist has %q %d times, want 2", want, strings.Count(pl, want))
		}
	}
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, "N=7") && strings.Contains(s, "ON=true") })
}
