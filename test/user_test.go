package test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

// openDir is a temporary folder every user may enter and read.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tend-open")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// copyExec copies the binary src into dir, executable by everyone.
func copyExec(t *testing.T, src, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, filepath.Base(src))
	e2e.InstallExec(t, src, dst)
	return dst
}

// procUID is the real uid of a running process.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	return ""
}

// --uid nobody from a root daemon: a fork-mode app runs as nobody with nobody's HOME and USER,
// its logs still written by the daemon; a Node cluster app runs as nobody and serves on its
// shared port (the preload and the readiness socket reach it); a folder nobody cannot enter is
// refused in one line.
func TestRunAsNobody(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	h := newHarness(t)
	dir := openDir(t)
	app := copyExec(t, e2e.AppBin, dir)
	h.OK("start", app, "--name", "forky", "--uid", "nobody", "--cwd", dir, "-s", "--", "-print-env", "USER,HOME")
	p := h.WaitStatus("forky", "online")
	if got := procUID(t, p.Pid); got != nobody.Uid {
		t.Errorf("the app runs as uid %s, want nobody's %s", got, nobody.Uid)
	}
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool {
		return strings.Contains(s, "USER=nobody") && strings.Contains(s, "HOME="+nobody.HomeDir)
	})

	web := e2e.WriteApp(t, dir, "web.js", e2e.HelloJS)
	os.Chmod(web, 0o644)
	addr := h.StartCluster(web, 2)
	h.OK("restart", "web", "--uid", "nobody", "-s")
	for _, q := range h.WaitOnline("web", 2) {
		if got := procUID(t, q.Pid); got != nobody.Uid {
			t.Errorf("cluster instance %d runs as uid %s", q.PmID, got)
		}
	}
	if got := spread(t, addr, 40); len(got) != 2 {
		t.Errorf("answers by instance %v: want both instances to serve", got)
	}
	// They got tend's preload from a folder nobody can read, not from the daemon's closed home.
	q := h.Instances("web")[0]
	argv := cmdline(t, q.Pid)
	i := slices.Index(argv, "--require")
	if i < 0 || strings.HasPrefix(argv[i+1], h.Home) {
		t.Errorf("cluster instance as nobody runs %q: want --require of a preload outside %s", argv, h.Home)
	}

	// A non-Node app that says READY=1 on NOTIFY_SOCKET: it reaches the readiness socket.
	h.OK("start", app, "--name", "notifier", "--uid", "nobody", "--cwd", dir, "--port", strconv.Itoa(e2e.FreePort(t)),
		"--wait-ready", "--listen-timeout", "60000", "-s", "--", "-serve", "-notify-after", "100ms")
	h.WaitFor("notifier", 15*time.Second, "online through READY=1", func(p proc) bool { return p.Pm2Env.Status == "online" })
	h.OK("reload", "web", "-s")
	h.WaitOnline("web", 2)

	closed := t.TempDir() // under a 0700 folder
	r := h.Run("start", app, "--name", "shut", "--uid", "nobody", "--cwd", closed)
	if r.Code != 2 || !strings.Contains(r.Err, "user nobody cannot enter") || strings.Count(r.Err, "\n") != 1 {
		t.Errorf("a folder nobody cannot enter: exit %d, %q", r.Code, r.Err)
	}
	if _, ok := h.Get("shut"); ok {
		t.Error("the refused app is in the list")
	}
}

// A daemon that does not run as root refuses --uid in one line, and keeps running.
func TestUIDNeedsRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("playing another user needs root")
	}
	dir := openDir(t)
	bin := copyExec(t, e2e.TendBin, dir)
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o700)
	os.Chown(home, 65534, 65534)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TEND_HOME="+home, "HOME="+dir)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	defer run("kill")
	out, code := run("start", "/bin/sleep", "--name", "s", "--uid", "root", "--", "60")
	if code != 2 || !strings.Contains(out, "cannot run an app as another user") || strings.Count(out, "\n") != 1 {
		t.Errorf("--uid root from a daemon of nobody: exit %d, %q", code, out)
	}
	if out, code := run("ping"); code != 0 {
		t.Errorf("the daemon after the refusal: exit %d, %q", code, out)
	}
	if out, _ := run("jlist"); strings.Contains(out, `"name":"s"`) {
		t.Error("the refused app is in the list")
	}
}

// A process that left the app's tree by a double fork and setsid (re-parented, in a session of
// its own) is still stopped with the app: it carries the run's mark in its environment.
func TestStopFindsEscapedProcess(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "escaper", "-s", "--", "-escape")
	p := h.WaitStatus("escaper", "online")
	text := e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, "escaped=") })
	_, rest, _ := strings.Cut(text, "escaped=")
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("no pid in %q", text)
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("the escaped process is not running: %v", err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	if ppid, pgid := f[1], f[2]; ppid == strconv.Itoa(p.Pid) || pgid == strconv.Itoa(p.Pid) {
		t.Fatalf("the process did not escape: ppid %s, pgid %s, app %d", ppid, pgid, p.Pid)
	}
	h.OK("stop", "escaper", "-s")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d outlived the stop of its app", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
