package keeper

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// End-to-end tests of a keeper process and its (fake) daemons: see main_test.go for the roles.

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

type keeperProc struct {
	home string
	pid  int
	out  string // the keeper's and its daemons' stdout and stderr
	done chan struct{}
	ws   syscall.WaitStatus
}

// startKeeper runs a keeper whose daemons follow script, in its own process group, which the
// test's cleanup kills whole (daemons and their children included) once it has checked that no
// process of the test reported a data race.
func startKeeper(t *testing.T, home, script string, env ...string) *keeperProc {
	t.Helper()
	k := &keeperProc{home: home, out: filepath.Join(home, "out.log"), done: make(chan struct{})}
	out, err := os.OpenFile(k.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := keeperCmd(home, script, env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k.pid = cmd.Process.Pid
	go func() {
		cmd.Wait()
		k.ws = cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(k.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-k.pid, syscall.SIGKILL)
		<-k.done
		checkOutput(t, k.out)
		if t.Failed() {
			b, _ := os.ReadFile(k.out)
			t.Logf("keeper and daemons' output:\n%s", b)
		}
	})
	return k
}

// checkOutput fails the test if a process of it panicked or reported a data race.
func checkOutput(t *testing.T, path string) {
	t.Helper()
	b, _ := os.ReadFile(path)
	out := string(b)
	if strings.Contains(out, "panic:") {
		t.Errorf("a process of the test panicked:\n%s", out)
	}
	for _, block := range strings.Split(out, "==================")[1:] {
		if !strings.Contains(block, "WARNING: DATA RACE") {
			continue
		}
		t.Errorf("a process of the test reported a data race:%s", block)
	}
}

func keeperCmd(home, script string, env ...string) *exec.Cmd {
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"=keeper", envHome+"="+home, envScript+"="+script, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// runKeeper runs a keeper that should fail at once, and returns what it said and its status.
// Should it run instead, the test's cleanup kills its process group.
func runKeeper(t *testing.T, home, script string) (string, int) {
	t.Helper()
	var out strings.Builder
	cmd := keeperCmd(home, script)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	select {
	case <-done:
		return out.String(), cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatal("a keeper that should have failed at once runs on")
		return "", 0
	}
}

// wait waits for the keeper to exit and returns its exit status.
func (k *keeperProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-k.done:
		return k.ws.ExitStatus()
	case <-time.After(10 * time.Second):
		t.Fatal("the keeper did not exit")
		return 0
	}
}

func (k *keeperProc) path(name string) string { return filepath.Join(k.home, name) }

// pidIn reads a pid a process of the test wrote into name.
func (k *keeperProc) pidIn(t *testing.T, name string) int {
	t.Helper()
	pid := 0
	waitFor(t, name, func() bool { // created, then written: poll until the pid is in
		b, _ := os.ReadFile(k.path(name))
		pid, _ = strconv.Atoi(string(b))
		return pid > 0
	})
	return pid
}

func (k *keeperProc) report(t *testing.T, gen int) daemonReport {
	t.Helper()
	var r daemonReport
	name := fmt.Sprintf("hello.%d.json", gen)
	waitFor(t, name, func() bool { return exists(k.path(name)) })
	b, _ := os.ReadFile(k.path(name))
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// holds counts the fds of process pid that are the pipe (or socket) of f.
func holds(t *testing.T, pid int, f *os.File) int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("pipe:[%d]", st.Ino)
	n := 0
	for _, l := range fdLinks(pid) {
		if l == want {
			n++
		}
	}
	return n
}

// fdLinks lists what the fds of process pid are.
func fdLinks(pid int) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// testPipeEnv is a pipe of the test whose read end the daemons open through /proc.
func testPipeEnv(t *testing.T) (r, w *os.File, env string) {
	r, w = testPipe(t)
	return r, w, fmt.Sprintf("%s=/proc/%d/fd/%d", envPipe, os.Getpid(), r.Fd())
}

// (a) A daemon that dies before it ever served is not restarted: the keeper fails, pointing at
// the log, and removes its pid file.
func TestRunDaemonFailsAtStart(t *testing.T) {
	t.Parallel()
	k := startKeeper(t, t.TempDir(), "fail3")
	if code := k.wait(t); code != 1 {
		t.Fatalf("the keeper exited %d; want 1", code)
	}
	b, _ := os.ReadFile(k.out)
	if !strings.Contains(string(b), "keeper-error: the daemon exited at start (exit code 3)") {
		t.Fatalf("output:\n%s", b)
	}
	if exists(k.path("daemon.2")) || exists(k.path("keeper.pid")) {
		t.Fatal("the keeper restarted the daemon or left keeper.pid behind")
	}
}

// (b) A daemon killed with SIGKILL is replaced within a second, and the new daemon's hello holds
// what the first one put (key, info, names, a live fd: what the test writes into its pipe, the
// new daemon reads from the fd the keeper kept) and the exit of the first daemon's child, which
// ended while no daemon ran and was reaped by the keeper as its subreaper.
func TestRunRestartsKilledDaemon(t *testing.T) {
	t.Parallel()
	_, w, pipeEnv := testPipeEnv(t)
	k := startKeeper(t, t.TempDir(), "hello+serving+put+child+mark-ready+block;await-go+hello+serving+readpipe+mark-ready+block", pipeEnv)
	daemon1 := k.pidIn(t, "daemon.1")
	waitFor(t, "the keeper to see its daemon serve", func() bool { return exists(k.path("keeper-served")) })
	waitFor(t, "daemon 1 ready", func() bool { return exists(k.path("ready.1")) })
	waitFor(t, "the keeper to hold the pipe", func() bool { return holds(t, k.pid, w) == 1 })
	if r := k.report(t, 1); len(r.Records) != 0 || r.KeeperPid != k.pid || r.Build != "t" {
		t.Fatalf("the first daemon's state: %+v", r)
	}
	child := k.pidIn(t, "child.1")

	killed := time.Now()
	if err := syscall.Kill(daemon1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a second daemon", func() bool { return exists(k.path("daemon.2")) })
	if d := time.Since(killed); d > time.Second {
		t.Errorf("the second daemon started %v after the first died", d)
	}
	// The child exits once re-parented; it is gone from /proc once the keeper has reaped it.
	waitFor(t, "the keeper to reap the child", func() bool { return !exists(fmt.Sprintf("/proc/%d", child)) })
	if _, err := w.WriteString("ping\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.path("go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemon 2 ready", func() bool { return exists(k.path("ready.2")) })
	r := k.report(t, 2)
	want := []reportRecord{{Key: "k", Info: `{"app":"k"}`, Names: []string{`"stdout"`}, Fds: 1}}
	if !slices.EqualFunc(r.Records, want, func(a, b reportRecord) bool {
		return a.Key == b.Key && a.Info == b.Info && slices.Equal(a.Names, b.Names) && a.Fds == b.Fds
	}) {
		t.Errorf("records %+v; want %+v", r.Records, want)
	}
	if len(r.Exits) != 1 || r.Exits[0].Pid != child || r.Exits[0].Code != 7 || r.Exits[0].Signal != 0 || r.Exits[0].At == 0 {
		t.Errorf("exits %+v; want the child %d's, code 7 (and not the daemon %d's)", r.Exits, child, daemon1)
	}
	if b, _ := os.ReadFile(k.path("pipe.2")); string(b) != "ping\n" {
		t.Errorf("the second daemon read %q from the kept pipe", b)
	}
	if r.KeeperPid != k.pid || len(r.Env) != 0 { // FromEnv took TEND_KEEPER_FD out of the environment
		t.Errorf("keeper pid %d (want %d), keeper variables inherited %q", r.KeeperPid, k.pid, r.Env)
	}
}

// (c) A daemon that says bye and exits 0 stops the keeper: exit 0, keeper.pid removed, no
// daemon restarted.
func TestRunByeStops(t *testing.T) {
	t.Parallel()
	k := startKeeper(t, t.TempDir(), "hello+serving+bye+exit0")
	if code := k.wait(t); code != 0 || !exists(k.path("hello.1.json")) {
		t.Fatalf("the keeper exited %d; its daemon said hello: %v", code, exists(k.path("hello.1.json")))
	}
	if exists(k.path("keeper.pid")) {
		t.Fatal("keeper.pid left behind")
	}
	if exists(k.path("daemon.2")) {
		t.Error("the keeper restarted a daemon that had said bye")
	}
}

// (d) A second keeper of the same home fails at once, naming the first one, and starts no
// daemon nor touches keeper.pid.
func TestRunSecondKeeperRefused(t *testing.T) {
	t.Parallel()
	k := startKeeper(t, t.TempDir(), "hello+serving+block")
	waitFor(t, "the keeper to serve", func() bool { return exists(k.path("keeper-served")) })
	out, code := runKeeper(t, k.home, "hello+serving+block")
	if want := fmt.Sprintf("a tend keeper already runs for %s (pid %d)", k.home, k.pid); code != 1 || !strings.Contains(out, want) {
		t.Fatalf("the second keeper exited %d saying %q; want 1 and %q", code, out, want)
	}
	if b, _ := os.ReadFile(k.path("keeper.pid")); string(b) != fmt.Sprintf("%d\n", k.pid) || exists(k.path("daemon.2")) {
		t.Fatalf("keeper.pid %q; a second daemon: %v", b, exists(k.path("daemon.2")))
	}
}

// (e) SIGTERM to the keeper goes to its daemon, which says bye and exits: the keeper exits 0.
func TestRunForwardsSIGTERM(t *testing.T) {
	t.Parallel()
	k := startKeeper(t, t.TempDir(), "hello+serving+block")
	waitFor(t, "the keeper to serve", func() bool { return exists(k.path("keeper-served")) })
	if err := syscall.Kill(k.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := k.wait(t); code != 0 {
		t.Fatalf("the keeper exited %d", code)
	}
	if !exists(k.path("term.1")) || exists(k.path("keeper.pid")) || exists(k.path("daemon.2")) {
		t.Fatal("the daemon was not told, keeper.pid was left behind, or a daemon restarted")
	}
}
