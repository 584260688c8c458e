package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/testutil"
	"github.com/tend-sh/tend/test/e2e"
)

// Bad input: one clear line on stderr, a non-zero exit, and a daemon that lives on with its
// state intact.
func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	unchanged := h.bystander()
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badJSON, []byte(`{"apps": [{"name": "x"}]}`), 0o644)

	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"start", "missing.js"}, 2, "script not found: "},
		{[]string{"stop", "nope"}, 3, `no app named "nope"`},
		{[]string{"restart", "42"}, 3, "no process with id 42"},
		{[]string{"start", e2e.AppBin, "-i", "100000"}, 2, "instances 100000 is more than 4096"},
		{[]string{"start", e2e.AppBin, "--kill-timeout", "-5"}, 2, "--kill-timeout"},
		{[]string{"start", e2e.AppBin, "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"start", noexec}, 2, "is not executable; chmod +x it or pass --interpreter"},
		{[]string{"start", e2e.AppBin, "--name", "all"}, 2, `"all" is reserved`},
		{[]string{"start", e2e.AppBin, "--kill-signal", "SIGNOPE"}, 2, "unknown signal"},
		{[]string{"start", badJSON}, 2, "script is missing"},
		{[]string{"sendSignal", "SIGNOPE", "keeper"}, 2, "unknown signal"},
		{[]string{"describe", "ghost"}, 3, `no app named "ghost"`},
		{[]string{"logs", "ghost", "--nostream"}, 3, `no app named "ghost"`},
		{[]string{"start", e2e.AppBin, "--name="}, 2, "--name is empty"},
		{[]string{"start", e2e.AppBin, "--max-restarts", "x"}, 2, `invalid value "x" for --max-restarts: want a whole number`},
		{[]string{"--no-daemon", "ls"}, 2, "--no-daemon goes with start"},
		{[]string{"stop"}, 2, "requires at least 1 arg"},
	} {
		h.OneLineError(tt.code, tt.msg, tt.args...)
	}
	unchanged()
}

// bystander starts an app that bad input must leave alone, and returns the check that it did:
// the daemon answers, and the app is the only one, online with the same pid.
func (h *harness) bystander() (unchanged func()) {
	h.T.Helper()
	h.OK("start", e2e.AppBin, "--name", "keeper", "-s")
	keeper, _ := h.Get("keeper")
	return func() {
		h.T.Helper()
		h.OK("ping")
		if ps := h.Jlist(); len(ps) != 1 || ps[0].Pid != keeper.Pid || ps[0].Pm2Env.Status != "online" {
			h.T.Fatalf("bad input changed what runs: %+v", ps)
		}
	}
}

func TestHomeNotWritable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.RunEnv([]string{"TEND_HOME=/proc/tend-home"}, "ls")
	if r.Code != 4 || !strings.Contains(r.Err, "TEND_HOME /proc/tend-home cannot be") || strings.Count(strings.TrimSpace(r.Err), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q", r.Code, r.Err)
	}
}

func TestForegroundExitsWhenEveryAppIsDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ExpectLogError("too many unstable restarts")
	r := h.Run("--no-daemon", "start", e2e.AppBin, "--name", "doomed", "--max-restarts", "2", "--", "-exit-after", "1ms", "-code", "3")
	if r.Code != 1 || !strings.Contains(r.Err, "every app has stopped, and doomed errored") {
		t.Fatalf("exit %d, stderr %q", r.Code, r.Err)
	}
}

func TestDaemonNotAnswering(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Something holds the socket and never answers: the CLI must say so, not hang.
	l, err := listenUnix(filepath.Join(h.Home, "tend.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := h.RunEnv([]string{"TEND_TIMEOUT=500ms"}, "ls")
	if r.Code != 4 || !strings.Contains(r.Err, "did not answer within 500ms") || !strings.Contains(r.Err, "daemon.pid") {
		t.Fatalf("exit %d, stderr %q", r.Code, r.Err)
	}
}

func TestForeground(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	fg := newCmd(h, "--no-daemon", "start", e2e.AppBin, "--name", "fg", "--", "-flood", "3", "-on-signal", "fg stopping")
	out := startBackground(t, fg)
	// The app's lines come after the socket serves, so no `tend` below can start a second daemon.
	e2e.WaitUntil(t, 10*time.Second, "the app's lines on stdout", func() bool { return strings.Contains(out.String(), "line 0000002") })

	p := h.WaitStatus("fg", "online") // a second CLI talks to the foreground daemon
	if r := h.Run("daemon"); r.Code == 0 || !strings.Contains(r.Err, "already runs") {
		t.Fatalf("a second daemon for the same home: exit %d, %q", r.Code, r.Err)
	}
	if _, err := os.Stat(filepath.Join(h.Home, "logs", "fg-out.log")); err != nil {
		t.Fatal("foreground mode writes log files too")
	}
	fg.Process.Signal(syscall.SIGTERM)
	err := waitCmd(fg, 10*time.Second)
	if err != nil {
		t.Fatalf("foreground tend should exit 0 on SIGTERM: %v\n%s", err, out.String())
	}
	if e2e.PidAlive(p.Pid) || !strings.Contains(out.String(), "fg stopping") {
		t.Fatalf("the app should have been stopped gracefully: alive %v, output %q", e2e.PidAlive(p.Pid), out.String())
	}
}

// --- helpers for commands that run in the background ---

type syncBuffer = testutil.SyncBuffer

func newCmd(h *harness, args ...string) *exec.Cmd {
	cmd := exec.Command(e2e.TendBin, args...)
	cmd.Env = h.Env
	return cmd
}

func startBackground(t *testing.T, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second // a grandchild holding our pipe must not hang Wait
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if waitCmd(cmd, 10*time.Second) != nil {
			cmd.Process.Kill()
		}
	})
	return out
}

func waitCmd(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		cmd.Process.Kill()
		return <-done
	}
}

func TestPanicInRequestKeepsDaemon(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.Env = append(h.Env, "TEND_TEST_PANIC=1")
	h.ExpectLogError(`msg="panic in request" route=/v1/debug/panic panic="test panic"`)
	h.OK("start", e2e.AppBin, "--name", "calm", "-s")
	out, err := exec.Command("curl", "-s", "--unix-socket", filepath.Join(h.Home, "tend.sock"), "-X", "POST", "http://tend/v1/debug/panic").CombinedOutput()
	if err != nil {
		t.Skipf("curl: %v", err)
	}
	if !strings.Contains(string(out), "internal error in /v1/debug/panic") {
		t.Fatalf("panic answer: %s", out)
	}
	h.OK("ping")
	if p, _ := h.Get("calm"); p.Pm2Env.Status != "online" {
		t.Fatalf("app after a panic in the daemon: %q", p.Pm2Env.Status)
	}
}

// As PID 1 of a container, tend must reap the orphans that apps leave behind.
func TestPID1ReapsOrphans(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace here: %v", err)
	}
	h := newHarness(t)
	script := filepath.Join(t.TempDir(), "orphans.sh")
	os.WriteFile(script, []byte("i=0; while true; do ( sleep 0.05 & ); i=$((i+1)); echo orphan $i; sleep 0.1; done\n"), 0o644)
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", e2e.TendBin, "--no-daemon", "start", script)
	cmd.Env = h.Env
	out := startBackground(t, cmd)
	// Until its socket exists, a `tend jlist` here would start a second, ordinary daemon.
	e2e.WaitUntil(t, 10*time.Second, "the socket of tend as PID 1", func() bool {
		_, err := os.Stat(filepath.Join(h.Home, "tend.sock"))
		return err == nil
	})
	p := h.WaitStatus("orphans", "online")
	// Ten orphans born (each lives 50 ms, so nine of them have died and been reaped, or not).
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, "orphan 10\n") })
	// The keeper is PID 1 there, and the daemon its child.
	data, _ := os.ReadFile(filepath.Join(h.Home, "keeper.pid"))
	if strings.TrimSpace(string(data)) != "1" {
		t.Fatalf("tend's keeper should be PID 1 in its namespace, keeper.pid says %q", data)
	}
	// A zombie has no readable environ: count the zombies whose parent is the namespace's tend
	// (unshare's child) or its daemon, the subreaper the orphans go to first.
	inner := childOf(cmd.Process.Pid)
	if inner == 0 {
		t.Fatal("no tend under unshare")
	}
	daemon := childOf(inner)
	zombies := 0
	for _, pid := range e2e.AllPids() {
		if state, ppid, ok := e2e.ProcStat(pid); ok && state == 'Z' && (ppid == inner || ppid == daemon) {
			zombies++
		}
	}
	if zombies > 1 { // one may be caught between its death and the reaper
		t.Fatalf("%d zombies under tend as PID 1", zombies)
	}
	syscall.Kill(inner, syscall.SIGTERM)
	if err := waitCmd(cmd, 10*time.Second); err != nil {
		t.Fatalf("tend as PID 1 should exit 0 on SIGTERM: %v\n%s", err, out.String())
	}
}

func childOf(parent int) int {
	for _, pid := range e2e.AllPids() {
		if _, ppid, ok := e2e.ProcStat(pid); ok && ppid == parent {
			return pid
		}
	}
	return 0
}

// Configs that are wrong in each way the production path meets: one line naming the file (and
// line where the format tells), a usage exit, nothing of the file started even when its first app
// was fine, and the daemon alive with what it ran.
func TestBadConfigs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	unchanged := h.bystander()
	dir := t.TempDir()
	good := `{"name": "fine", "script": "` + e2e.AppBin + `"}`
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, haveNode := exec.LookPath("node")
	for _, tt := range []struct {
		args []string
		msg  string
		node bool
	}{
		{[]string{"start", write("syntax.json", "{\"apps\": [\n"+good+",\n {\"name\": \"x\" \"script\": \"a\"}]}")}, "syntax.json:3:", false},
		{[]string{"start", write("syntax.yaml", "apps:\n  - name: a\n    script: [b\n")}, "syntax.yaml:3:", false},
		{[]string{"start", write("throws.config.js", "throw new Error('no config today')")}, "no config today", true},
		{[]string{"start", write("dup.json", `{"apps": [`+good+`, `+good+`]}`)}, `dup.json:1: apps[1] "fine": the name "fine" is apps[0]'s too`, false},
		{[]string{"start", write("abc.json", "{\"apps\": [\n"+good+",\n {\"name\": \"n\", \"script\": \""+e2e.AppBin+"\",\n  \"instances\": 100000}]}")}, `abc.json:4: apps[1] "n": instances 100000 is more than 4096`, false},
		{[]string{"start", write("colon/Procfile", "web: "+e2e.AppBin+"\nworker "+e2e.AppBin+"\n")}, "Procfile:2", false},
		{[]string{"start", write("badenv.json", `{"apps": [`+good+`, {"name": "d", "script": "`+e2e.AppBin+`", "env_file": "bad.env"}]}`)}, "bad.env:2", false},
		{[]string{"start", write("noenv.json", `{"apps": [{"name": "m", "script": "`+e2e.AppBin+`", "env_file": "missing.env"}]}`)}, "missing.env", false},
		{[]string{"start", write("noscript.json", `{"apps": [`+good+`, {"name": "s"}]}`)}, "script is missing", false},
		{[]string{"start", write("clash.json", `{"apps": [{"name": "keeper", "script": "/bin/sleep", "args": "100"}]}`)}, `app "keeper" already runs ` + e2e.AppBin + ` (started from the command line)`, false},
		{[]string{"resurrect", write("cut.pm2", `[{"name": "fine", "pm_exec_path": "`+e2e.AppBin+`"`)}, "cut short", false},
		{[]string{"resurrect", write("future.pm2", `[{"_tend": {"v": 99, "spec": {}}}]`)}, "newer tend", false},
	} {
		if tt.node && haveNode != nil {
			continue
		}
		write("bad.env", "A=1\nthis line has no equals sign\n")
		h.OneLineError(2, tt.msg, tt.args...)
	}
	// A JS config needs node: without it on PATH, say what to install.
	js := write("ecosystem.config.js", "module.exports = {apps: []}")
	if r := h.RunEnv([]string{"PATH=/nonexistent"}, "start", js); r.Code != 2 || !strings.Contains(r.Err, "install Node.js") {
		t.Errorf("no node: exit %d, %q", r.Code, r.Err)
	}
	unchanged()
}

// TEND_HOME=~/.pm2 while PM2's daemon runs there: the apps' log files would be shared, so tend
// does not start, and says why in one line; once PM2 is gone it starts.
func TestBesideALivePM2(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pm2 := exec.Command("bash", "-c", `exec -a "PM2 v7.0.4: God Daemon (`+h.Home+`)" sleep 60`)
	if err := pm2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pm2.Process.Kill(); pm2.Wait() })
	os.WriteFile(filepath.Join(h.Home, "pm2.pid"), []byte(fmt.Sprint(pm2.Process.Pid)), 0o644)
	e2e.WaitFile(t, fmt.Sprintf("/proc/%d/cmdline", pm2.Process.Pid), 5*time.Second, func(s string) bool { return strings.Contains(s, "God Daemon") })
	r := h.Run("start", e2e.AppBin, "--name", "web", "-s")
	if r.Code == 0 || !strings.Contains(r.Err, "PM2's daemon runs there") || strings.Count(strings.TrimSpace(r.Err), "\n") != 0 {
		t.Fatalf("beside a live PM2: exit %d, %q", r.Code, r.Err)
	}
	pm2.Process.Kill()
	pm2.Wait()
	h.OK("start", e2e.AppBin, "--name", "web", "-s")
	h.WaitStatus("web", "online")
}
