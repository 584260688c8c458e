package e2e

import (
	"bytes"
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
)

// Harness is one test's tend world: its own $TEND_HOME and a marker in the environment of
// every process it starts, by which leftovers are found.
type Harness struct {
	T    *testing.T
	Bin  string   // the tend binary the test runs (TendBin unless it needs one of its own)
	Home string   // its $TEND_HOME
	Mark string   // the marker in the environment of every process it starts
	Env  []string // the environment the CLI runs with

	mu       sync.Mutex
	expected []string // substrings of tend.log lines the test provokes on purpose
}

func New(t *testing.T) *Harness {
	t.Helper()
	// Short, because a unix socket path must fit in 108 bytes.
	home, err := os.MkdirTemp("", "th")
	if err != nil {
		t.Fatal(err)
	}
	h := &Harness{T: t, Bin: TendBin, Home: home, Mark: fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())}
	h.Env = append(os.Environ(), "TEND_HOME="+home, "TEND_TEST_MARK="+h.Mark)
	t.Cleanup(h.cleanup)
	return h
}

// Result is what one CLI call printed and its exit code.
type Result struct {
	Out, Err string
	Code     int
}

func (h *Harness) Run(args ...string) Result {
	h.T.Helper()
	return h.RunEnv(nil, args...)
}

func (h *Harness) RunEnv(extra []string, args ...string) Result {
	h.T.Helper()
	return h.RunIO(extra, nil, args...)
}

// RunIO runs tend with extra environment and, if not nil, stdin.
func (h *Harness) RunIO(extra []string, stdin io.Reader, args ...string) Result {
	h.T.Helper()
	cmd := exec.Command(h.Bin, args...)
	cmd.Env = append(append([]string{}, h.Env...), extra...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.T.Fatalf("run tend %v: %v", args, err)
	}
	return Result{out.String(), errb.String(), code}
}

// OK runs tend and fails the test unless it exits 0.
func (h *Harness) OK(args ...string) string {
	h.T.Helper()
	r := h.Run(args...)
	if r.Code != 0 {
		h.T.Fatalf("tend %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Out, r.Err)
	}
	return r.Out
}

// Marked lists the live processes whose environment carries this harness's marker.
func (h *Harness) Marked() []int {
	var pids []int
	needle := []byte("TEND_TEST_MARK=" + h.Mark + "\x00")
	for _, pid := range AllPids() {
		if pid == os.Getpid() || !PidAlive(pid) {
			continue
		}
		if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil && bytes.Contains(env, needle) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ExpectLogError declares that tend.log may hold ERROR (or panic) lines containing any of
// these substrings: the test provokes them on purpose. Any other such line fails the test.
func (h *Harness) ExpectLogError(substrs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expected = append(h.expected, substrs...)
}

// badLogLine matches what tend.log must never hold unless a test expects it: an ERROR, a panic
// (recovered: "panic in …", or the runtime's "panic: …", "fatal error: …" and goroutine dumps
// in a foreground daemon's log), and the state machine refusing a transition.
var badLogLine = regexp.MustCompile(`level=ERROR|(^|[^A-Za-z_])panic([^A-Za-z_]|$)|^fatal error: |^goroutine \d+ \[|invalid transition|state machine`)

// UnexpectedLogLines returns the lines of tend.log that match badLogLine and none of the
// substrings the test declared with expectLogError.
func (h *Harness) UnexpectedLogLines() []string {
	data, err := os.ReadFile(filepath.Join(h.Home, "tend.log"))
	if err != nil {
		return nil // no daemon ran in this home
	}
	h.mu.Lock()
	expected := slices.Clone(h.expected)
	h.mu.Unlock()
	return UnexpectedLines(string(data), expected)
}

func UnexpectedLines(log string, expected []string) []string {
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
func (h *Harness) cleanup() {
	// A daemon that exits removes daemon.pid; one whose pid is there but gone crashed (a
	// runtime panic outside any recover: its stderr is /dev/null, so tend.log may not say).
	if data, err := os.ReadFile(filepath.Join(h.Home, "daemon.pid")); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 1 && !PidAlive(pid) {
			h.T.Errorf("the daemon (pid %d) is gone without removing daemon.pid: it crashed", pid)
		}
	}
	h.Run("kill")
	deadline := time.Now().Add(5 * time.Second)
	left := h.Marked()
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left = h.Marked()
	}
	if len(left) > 0 {
		var desc []string
		for _, p := range left {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			desc = append(desc, fmt.Sprintf("%d %q", p, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
			syscall.Kill(p, syscall.SIGKILL)
		}
		h.T.Errorf("processes left behind: %s", strings.Join(desc, "; "))
	}
	// After kill, so that what the daemon logs on its way out is checked too.
	if bad := h.UnexpectedLogLines(); len(bad) > 0 {
		h.T.Errorf("tend.log has %d line(s) with an error the test did not expect (declare one with h.ExpectLogError):\n%s",
			len(bad), strings.Join(bad, "\n"))
	}
	if dir := os.Getenv("TEND_E2E_KEEP_LOGS"); dir != "" {
		// For a look at every test's daemon log, failed or not.
		if log, err := os.ReadFile(filepath.Join(h.Home, "tend.log")); err == nil {
			os.WriteFile(filepath.Join(dir, strings.ReplaceAll(h.T.Name(), "/", "_")+".log"), log, 0o644)
		}
	}
	if h.T.Failed() {
		if log, err := os.ReadFile(filepath.Join(h.Home, "tend.log")); err == nil {
			h.T.Logf("tend.log:\n%s", log)
		}
	}
	os.RemoveAll(h.Home)
}

// OneLineError runs tend and checks that it failed with code and said one line, "tend: …" with msg.
func (h *Harness) OneLineError(code int, msg string, args ...string) {
	h.T.Helper()
	r := h.Run(args...)
	lines := strings.Split(strings.TrimSpace(r.Err), "\n")
	if r.Code != code || !strings.Contains(r.Err, msg) || len(lines) != 1 || !strings.HasPrefix(r.Err, "tend: ") {
		h.T.Errorf("tend %s: exit %d (want %d), stderr %q (want one line with %q)", strings.Join(args, " "), r.Code, code, r.Err, msg)
	}
}
