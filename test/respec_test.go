package test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

// cmdline is a process's arguments, from /proc.
func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		t.Fatalf("cmdline of %d: %v", pid, err)
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

// PM2's attribute update (its app-config-update.sh): restart, reload and start of an app that
// exists take start's settings flags, --name renames, and node_args given as null is dropped.
func TestRestartWithSettings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	a := e2e.WriteApp(t, dir, "a.js", "setInterval(() => {}, 1000)\n")
	h.OK("start", a, "-s")
	h.WaitStatus("a", "online")
	if got := h.Pm2Env(0)["node_args"]; got == nil || len(got.([]any)) != 0 {
		t.Fatalf("node_args after start: %v, want []", got)
	}

	// PM2: restart with --node-args restarts with them, and jlist says so.
	h.OK("restart", "a", "--node-args=--no-warnings", "-s")
	p := h.WaitFor("a", 10*time.Second, "restart with --no-warnings", func(p proc) bool {
		return p.Pm2Env.RestartTime == 1 && p.Pm2Env.Status == "online" && p.Pid > 0
	})
	if !slices.Contains(cmdline(t, p.Pid), "--no-warnings") {
		t.Errorf("process runs %q, want --no-warnings in it", cmdline(t, p.Pid))
	}
	if got := h.Pm2Env(0)["node_args"]; len(got.([]any)) != 1 || got.([]any)[0] != "--no-warnings" {
		t.Errorf("node_args: %v", got)
	}

	// restart <id> --name renames; the old name selects nothing, the pid file takes the new name.
	h.OK("restart", "0", "--name=web", "-s")
	h.WaitFor("web", 10*time.Second, "online as web", func(p proc) bool { return p.Pm2Env.Status == "online" && p.Pid > 0 })
	if r := h.Run("restart", "a"); r.Code == 0 {
		t.Error("restart a after the rename: exit 0")
	}
	e2e.WaitFile(t, filepath.Join(h.Home, "pids", "web-0.pid"), 10*time.Second, func(s string) bool { return s != "" })

	// start <id> --name renames and restarts too (PM2's "start 0 --name new-name-2").
	h.OK("start", "0", "--name=web2", "-s")
	h.WaitFor("web2", 10*time.Second, "online as web2", func(p proc) bool { return p.Pm2Env.Status == "online" && p.Pid > 0 })

	// --node-args=null drops node_args: the process runs without, and jlist has no node_args.
	h.OK("restart", "web2", "--node-args=null", "-s")
	p = h.WaitFor("web2", 10*time.Second, "a new process", func(p proc) bool {
		return p.Pm2Env.Status == "online" && p.Pid > 0 && !slices.Contains(cmdline(t, p.Pid), "--no-warnings")
	})
	if _, ok := h.Pm2Env(0)["node_args"]; ok {
		t.Errorf("node_args still in jlist after --node-args=null")
	}
	if pl := h.OK("prettylist"); strings.Contains(pl, "node_args") {
		t.Errorf("prettylist still has node_args")
	}

	// Refused, and nothing changes: a name another app has, a bad value, a flag that is not a
	// setting of an app that exists, settings with a config file.
	b := e2e.WriteApp(t, dir, "b.js", "setInterval(() => {}, 1000)\n")
	h.OK("start", b, "-s")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"restart", "web2", "--name", "b"}, `an app named "b" exists already`},
		{[]string{"restart", "web2", "--kill-timeout", "soon"}, "kill_timeout"},
		{[]string{"start", "web2", "-i", "2"}, "--instances"},
		{[]string{"restart", "web2", "-i", "2"}, "unknown shorthand flag"},
		{[]string{"restart", filepath.Join(dir, "x.json"), "--name", "c"}, "settings flags go with an app"},
	} {
		if r := h.Run(c.args...); r.Code == 0 || !strings.Contains(r.Err, c.want) || strings.Count(r.Err, "\n") != 1 {
			t.Errorf("tend %s: exit %d, stderr %q, want one line with %q", strings.Join(c.args, " "), r.Code, r.Err, c.want)
		}
	}
	if got := h.statuses(); len(got["web2"]) != 1 || len(got["b"]) != 1 {
		t.Errorf("after the refused changes: %v", got)
	}
	if p, _ := h.Get("web2"); p.Pid == 0 || p.Pm2Env.RestartTime != 4 {
		t.Errorf("web2 after the refused changes: pid %d, restarts %d (want running, 4)", p.Pid, p.Pm2Env.RestartTime)
	}
}

// In cluster mode, reload with settings replaces every instance with them (PM2's reload
// --node-args), and reload --name renames the app.
func TestReloadWithSettings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.StartCluster(e2e.WriteApp(t, t.TempDir(), "c.js", e2e.HelloJS), 2)
	old := pids(h.WaitOnline("c", 2))
	h.OK("reload", "c", "--node-args=--no-warnings", "-s")
	for _, p := range h.WaitOnline("c", 2) {
		if slices.Contains(old, p.Pid) {
			t.Fatalf("instance %d kept its process %d", p.PmID, p.Pid)
		}
		if !slices.Contains(cmdline(t, p.Pid), "--no-warnings") {
			t.Errorf("instance %d runs %q", p.PmID, cmdline(t, p.Pid))
		}
	}
	h.OK("reload", "c", "--name", "api", "-s")
	if got := h.statuses(); len(got["api"]) != 2 || got["c"] != nil {
		t.Errorf("after reload --name api: %v", got)
	}
	// Some of an app's instances cannot take the app's settings.
	if r := h.Run("restart", "0", "--node-args=--trace-warnings"); r.Code == 0 || !strings.Contains(r.Err, "only some of its 2 instances") {
		t.Errorf("restart 0 --node-args of a 2-instance app: exit %d, %q", r.Code, r.Err)
	}
}
