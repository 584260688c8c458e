// Package test holds tend's end-to-end tests: the real binary, a real daemon in a temporary
// $TEND_HOME, real apps (the testapp binary, node, sleep), real files.
package test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/logs"
)

var (
	tendBin string
	appBin  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tend-e2e-bin")
	if err != nil {
		panic(err)
	}
	// Built once and without -race: the daemon and the apps are not what -race checks here, and
	// a race-instrumented daemon would make every test slow on 2 cores.
	tendBin = filepath.Join(dir, "tend")
	appBin = filepath.Join(dir, "testapp")
	for _, b := range [][2]string{{tendBin, "../cmd/tend"}, {appBin, "./testapp"}} {
		out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness is one test's tend world: its own $TEND_HOME and a marker in the environment of
// every process it starts, by which leftovers are found.
type harness struct {
	t    *testing.T
	bin  string // the tend binary the test runs (tendBin unless it needs one of its own)
	home string
	mark string
	env  []string

	mu       sync.Mutex
	expected []string // substrings of tend.log lines the test provokes on purpose
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	// Short, because a unix socket path must fit in 108 bytes.
	home, err := os.MkdirTemp("", "th")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, bin: tendBin, home: home, mark: fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())}
	h.env = append(os.Environ(), "TEND_HOME="+home, "TEND_TEST_MARK="+h.mark)
	t.Cleanup(h.cleanup)
	return h
}

type result struct {
	out, err string
	code     int
}

func (h *harness) run(args ...string) result {
	h.t.Helper()
	return h.runEnv(nil, args...)
}

func (h *harness) runEnv(extra []string, args ...string) result {
	h.t.Helper()
	return h.runIO(extra, nil, args...)
}

// runIO runs tend with extra environment and, if not nil, stdin.
func (h *harness) runIO(extra []string, stdin io.Reader, args ...string) result {
	h.t.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(append([]string{}, h.env...), extra...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("run tend %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs tend and fails the test unless it exits 0.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 {
		h.t.Fatalf("tend %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

type proc struct {
	Pid   int    `json:"pid"`
	Name  string `json:"name"`
	PmID  int    `json:"pm_id"`
	Monit struct {
		Memory int64
		CPU    float64
	} `json:"monit"`
	Pm2Env struct {
		Status           string         `json:"status"`
		RestartTime      int            `json:"restart_time"`
		UnstableRestarts int            `json:"unstable_restarts"`
		PmUptime         int64          `json:"pm_uptime"`
		CreatedAt        int64          `json:"created_at"`
		ExecMode         string         `json:"exec_mode"`
		Instances        int            `json:"instances"`
		PmOutLogPath     string         `json:"pm_out_log_path"`
		PmErrLogPath     string         `json:"pm_err_log_path"`
		PmExecPath       string         `json:"pm_exec_path"`
		PmCwd            string         `json:"pm_cwd"`
		Namespace        string         `json:"namespace"`
		NodeAppInstance  *int           `json:"NODE_APP_INSTANCE"`
		ExecInterpreter  string         `json:"exec_interpreter"`
		ExitCode         *int           `json:"exit_code"`
		Env              map[string]any `json:"env"`
		RetryAt          int64          `json:"_tend_retry_at"`
		LogDropped       *struct {
			Out, Err int64
			Reason   string
		} `json:"_tend_log_dropped"`
	} `json:"pm2_env"`
}

func (h *harness) jlist() []proc {
	h.t.Helper()
	out := h.ok("jlist")
	var ps []proc
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		h.t.Fatalf("jlist is not JSON: %v\n%s", err, out)
	}
	return ps
}

// pm2Env is the pm2_env of the process with that id, every key of it.
func (h *harness) pm2Env(id int) map[string]any {
	h.t.Helper()
	var procs []struct {
		PmID   int            `json:"pm_id"`
		Pm2Env map[string]any `json:"pm2_env"`
	}
	if err := json.Unmarshal([]byte(h.ok("jlist")), &procs); err != nil {
		h.t.Fatalf("jlist is not JSON: %v", err)
	}
	for _, p := range procs {
		if p.PmID == id {
			return p.Pm2Env
		}
	}
	h.t.Fatalf("no process with id %d in jlist", id)
	return nil
}

func (h *harness) get(name string) (proc, bool) {
	h.t.Helper()
	for _, p := range h.jlist() {
		if p.Name == name {
			return p, true
		}
	}
	return proc{}, false
}

// waitFor polls jlist until cond holds for the named app's first instance.
func (h *harness) waitFor(name string, timeout time.Duration, what string, cond func(proc) bool) proc {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var last proc
	for time.Now().Before(deadline) {
		p, ok := h.get(name)
		if ok && cond(p) {
			return p
		}
		last = p
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("app %q: %s not reached within %s; last: status=%q pid=%d restarts=%d", name, what, timeout, last.Pm2Env.Status, last.Pid, last.Pm2Env.RestartTime)
	return last
}

func (h *harness) waitStatus(name, status string) proc {
	h.t.Helper()
	return h.waitFor(name, 10*time.Second, "status "+status, func(p proc) bool { return p.Pm2Env.Status == status })
}

// regInstance is an instance as $TEND_HOME/registry.json records it.
type regInstance struct {
	ID     int    `json:"pm_id"`
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

// registry reads what the daemon last wrote to registry.json: each app's instances, by name.
// The daemon writes it in batches, a moment after a change: tests wait for the content they
// need rather than for a fixed time.
func (h *harness) registry() map[string][]regInstance {
	data, err := os.ReadFile(filepath.Join(h.home, "registry.json"))
	if err != nil {
		return nil
	}
	var reg struct {
		Apps []struct {
			Spec struct {
				Name string `json:"name"`
			} `json:"spec"`
			Instances []regInstance `json:"instances"`
		} `json:"apps"`
	}
	if json.Unmarshal(data, &reg) != nil {
		return nil
	}
	out := map[string][]regInstance{}
	for _, a := range reg.Apps {
		out[a.Spec.Name] = append(out[a.Spec.Name], a.Instances...)
	}
	return out
}

// waitRegistry waits until registry.json records the named apps (one instance each) in the given
// statuses.
func (h *harness) waitRegistry(want map[string]string) {
	h.t.Helper()
	waitFor(h.t, 10*time.Second, fmt.Sprintf("registry.json recording %v", want), func() bool {
		reg := h.registry()
		for name, status := range want {
			if is := reg[name]; len(is) != 1 || is[0].Status != status {
				return false
			}
		}
		return true
	})
}

// waitAppReady waits until the named app's process (started with the testapp's -ready flag)
// has said it is ready: its signal handlers are installed. tend marks a fork-mode app online at
// spawn, before that, so a test that signals the app must wait for this.
func (h *harness) waitAppReady(name string) proc {
	h.t.Helper()
	p := h.waitFor(name, 10*time.Second, "a running process", func(p proc) bool { return p.Pid > 0 })
	line := fmt.Sprintf("ready pid=%d\n", p.Pid)
	waitFile(h.t, p.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, line) })
	return p
}

// waitFile polls until the file's content satisfies cond.
func waitFile(t *testing.T, path string, timeout time.Duration, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var data []byte
	for time.Now().Before(deadline) {
		data, _ = os.ReadFile(path)
		if cond(string(data)) {
			return string(data)
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("file %s did not reach the expected content within %s; it has %d bytes: %.500s", path, timeout, len(data), data)
	return ""
}

// logText is what an app's log file holds with the files rotation moved aside before it,
// oldest first (gzip ones read through).
func logText(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range append(logs.Rotated(path), path) {
		data, _ := os.ReadFile(p)
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
		b.Write(data)
	}
	return b.String()
}

// waitLog is waitFile over logText: the log with its rotated files.
func waitLog(t *testing.T, path string, timeout time.Duration, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var text string
	for time.Now().Before(deadline) {
		if text = logText(t, path); cond(text) {
			return text
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("log %s (with its rotated files) did not reach the expected content within %s; it has %d bytes: %.500s", path, timeout, len(text), text)
	return ""
}

// marked lists the live processes whose environment carries this harness's marker.
func (h *harness) marked() []int {
	var pids []int
	needle := []byte("TEND_TEST_MARK=" + h.mark + "\x00")
	for _, pid := range allPids() {
		if pid == os.Getpid() || !pidAlive(pid) {
			continue
		}
		if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil && bytes.Contains(env, needle) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// expectLogError declares that tend.log may hold ERROR (or panic) lines containing any of
// these substrings: the test provokes them on purpose. Any other such line fails the test.
func (h *harness) expectLogError(substrs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expected = append(h.expected, substrs...)
}

// badLogLine matches what tend.log must never hold unless a test expects it: an ERROR, a panic
// (recovered: "panic in …", or the runtime's "panic: …", "fatal error: …" and goroutine dumps
// in a foreground daemon's log), and the state machine refusing a transition.
var badLogLine = regexp.MustCompile(`level=ERROR|(^|[^A-Za-z_])panic([^A-Za-z_]|$)|^fatal error: |^goroutine \d+ \[|invalid transition|state machine`)

// unexpectedLogLines returns the lines of tend.log that match badLogLine and none of the
// substrings the test declared with expectLogError.
func (h *harness) unexpectedLogLines() []string {
	data, err := os.ReadFile(filepath.Join(h.home, "tend.log"))
	if err != nil {
		return nil // no daemon ran in this home
	}
	h.mu.Lock()
	expected := slices.Clone(h.expected)
	h.mu.Unlock()
	return unexpectedLines(string(data), expected)
}

func unexpectedLines(log string, expected []string) []string {
	var bad []string
	for _, line := range strings.Split(log, "\n") {
		if badLogLine.MatchString(line) && !slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(line, e) }) {
			bad = append(bad, line)
		}
	}
	return bad
}

// cleanup stops the daemon, proves that nothing the test started is left, and that tend.log
// holds no error the test did not expect.
func (h *harness) cleanup() {
	// A daemon that exits removes daemon.pid; one whose pid is there but gone crashed (a
	// runtime panic outside any recover: its stderr is /dev/null, so tend.log may not say).
	if data, err := os.ReadFile(filepath.Join(h.home, "daemon.pid")); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 1 && !pidAlive(pid) {
			h.t.Errorf("the daemon (pid %d) is gone without removing daemon.pid: it crashed", pid)
		}
	}
	h.run("kill")
	deadline := time.Now().Add(5 * time.Second)
	left := h.marked()
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left = h.marked()
	}
	if len(left) > 0 {
		var desc []string
		for _, p := range left {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			desc = append(desc, fmt.Sprintf("%d %q", p, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
			syscall.Kill(p, syscall.SIGKILL)
		}
		h.t.Errorf("processes left behind: %s", strings.Join(desc, "; "))
	}
	// After kill, so that what the daemon logs on its way out is checked too.
	if bad := h.unexpectedLogLines(); len(bad) > 0 {
		h.t.Errorf("tend.log has %d line(s) with an error the test did not expect (declare one with h.expectLogError):\n%s",
			len(bad), strings.Join(bad, "\n"))
	}
	if dir := os.Getenv("TEND_E2E_KEEP_LOGS"); dir != "" {
		// For a look at every test's daemon log, failed or not.
		if log, err := os.ReadFile(filepath.Join(h.home, "tend.log")); err == nil {
			os.WriteFile(filepath.Join(dir, strings.ReplaceAll(h.t.Name(), "/", "_")+".log"), log, 0o644)
		}
	}
	if h.t.Failed() {
		if log, err := os.ReadFile(filepath.Join(h.home, "tend.log")); err == nil {
			h.t.Logf("tend.log:\n%s", log)
		}
	}
	os.RemoveAll(h.home)
}

// procStat reads a process's state letter and parent pid from /proc (the fields after the
// command name, which may hold spaces).
func procStat(pid int) (state byte, ppid int, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, 0, false
	}
	f := strings.Fields(string(stat[i+2:]))
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, true
}

func pidAlive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != 'Z'
}

// allPids lists every process on the machine.
func allPids() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
