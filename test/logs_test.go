package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/test/e2e"
)

func TestLogFloodKeepsEveryLineInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const n = 200000
	h.OK("start", e2e.AppBin, "--name", "flood", "-s", "--", "-flood", fmt.Sprint(n), "-stderr", "5")
	p, _ := h.Get("flood")
	// 12.6 MB: the file rotates at tend's default 10 MB on the way, and no line is lost.
	out := e2e.WaitLog(t, p.Pm2Env.PmOutLogPath, 30*time.Second, func(s string) bool { return strings.Count(s, "\n") >= n })
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines in the files, want %d", len(lines), n)
	}
	if rotated := logs.Rotated(p.Pm2Env.PmOutLogPath); len(rotated) != 1 {
		t.Fatalf("rotated files %q, want one (12.6 MB at 10 MB a file)", rotated)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("line %07d %s", i, strings.Repeat("x", 50)); l != want {
			t.Fatalf("line %d is %q, want %q", i, l, want)
		}
	}
	e2e.WaitFile(t, p.Pm2Env.PmErrLogPath, 5*time.Second, func(s string) bool { return s == "err 0\nerr 1\nerr 2\nerr 3\nerr 4\n" })

	got := h.OK("logs", "flood", "--lines", "2", "--nostream", "--out")
	if !strings.Contains(got, "0|flood | line 0199998") || !strings.Contains(got, "0|flood | line 0199999") || strings.Contains(got, "line 0199997") {
		t.Fatalf("logs --lines 2:\n%s", got)
	}
	raw := h.OK("logs", "flood", "--lines", "1", "--nostream", "--err", "--raw")
	if strings.TrimSpace(raw) != "err 4" {
		t.Fatalf("logs --raw --err: %q", raw)
	}
	h.OK("flush", "flood")
	if st, _ := os.Stat(p.Pm2Env.PmOutLogPath); st.Size() != 0 {
		t.Fatalf("flush left %d bytes", st.Size())
	}
}

func TestLogOptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	custom := filepath.Join(dir, "custom-out.log")
	combined := filepath.Join(dir, "all.log")
	h.OK("start", e2e.AppBin, "--name", "timed", "--time", "-o", custom, "-l", combined, "-s", "--", "-flood", "3", "-stderr", "1")
	h.OK("start", e2e.AppBin, "--name", "fmt", "--log-date-format", "YYYY/MM/DD [at] HH", "-s", "--", "-flood", "1")
	h.OK("start", e2e.AppBin, "--name", "quiet", "-o", "/dev/null", "-e", "NULL", "-s", "--", "-flood", "5")

	out := e2e.WaitFile(t, custom, 5*time.Second, func(s string) bool { return strings.Count(s, "\n") == 3 })
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: line 000000\d x+$`)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !stamp.MatchString(l) {
			t.Fatalf("--time line %q does not match %s", l, stamp)
		}
	}
	all := e2e.WaitFile(t, combined, 5*time.Second, func(s string) bool { return strings.Count(s, "\n") == 4 })
	if !strings.Contains(all, ": err 0\n") {
		t.Fatalf("combined log lacks stderr: %q", all)
	}
	f, _ := h.Get("fmt")
	e2e.WaitFile(t, f.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool {
		return regexp.MustCompile(`^\d{4}/\d\d/\d\d at \d\d: line 0000000`).MatchString(s)
	})
	q, _ := h.Get("quiet")
	if q.Pm2Env.PmOutLogPath != "/dev/null" {
		t.Fatalf("disabled out log path %q", q.Pm2Env.PmOutLogPath)
	}
	entries, _ := os.ReadDir(filepath.Join(h.Home, "logs"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "quiet") {
			t.Fatalf("a disabled stream wrote %s", e.Name())
		}
	}
}

func TestLogsFollow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "tick.sh")
	os.WriteFile(script, []byte("i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done\n"), 0o644)
	h.OK("start", script, "-s")
	cmd := newCmd(h, "logs", "--raw", "--lines", "0")
	out := startBackground(t, cmd)
	e2e.WaitUntil(t, 5*time.Second, "logs following the app's lines", func() bool { return strings.Count(out.String(), "tick") >= 3 })
	h.OK("start", e2e.AppBin, "--name", "late", "-s", "--", "-flood", "2")
	e2e.WaitUntil(t, 5*time.Second, "logs showing an app started after it", func() bool {
		return strings.Contains(out.String(), "line 0000001")
	})
}

// What an app prints while it stops reaches its log file, even when the app is deleted (its
// files are closed) right after it exits.
func TestLastLinesSurviveDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for round := range 3 {
		name := fmt.Sprintf("bye%d", round)
		h.OK("start", e2e.AppBin, "--name", name, "-s", "--", "-flood-on-signal", "200000", "-ready")
		// Online at spawn: deleted before its handler is installed, the app would die of the
		// signal without a line. It says when the handler is in place.
		p := h.WaitAppReady(name)
		h.OK("delete", name, "-s")
		out := e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.HasSuffix(s, "END\n") })
		// The "ready" line, then 200000 lines and END.
		if n := strings.Count(out, "\n"); n != 200002 {
			t.Fatalf("round %d: %d lines in the file, want 200002", round, n)
		}
	}
}

func TestFIFOLogPathDoesNotHangTheDaemon(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip(err)
	}
	h.ExpectLogError("is a FIFO that nobody reads")
	r := h.Run("start", e2e.AppBin, "--name", "piped", "-o", fifo)
	if r.Code != 1 || !strings.Contains(r.Err, "is a FIFO that nobody reads") {
		t.Fatalf("exit %d, %q", r.Code, r.Err)
	}
	h.OK("start", e2e.AppBin, "--name", "other", "-s")
	h.WaitStatus("other", "online")
}

// tend set applies at once to the running apps that do not set their own keys: a quiet app's
// file rotates at the new size and retain 2 keeps two, while an app with its own keys keeps
// them. Then `tend reloadLogs` follows a file an external logrotate moved. (Rotation under a
// flood is in the fault suite, test/faults.)
func TestRotationSettingsApplyLive(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := filepath.Join(t.TempDir(), "apps.json")
	os.WriteFile(cfg, []byte(`{"apps": [{"name": "own", "script": "`+e2e.AppBin+`", "args": ["-echo-stdin", "-flood", "40000"],
		"max_size": "1M", "retain": "all"}]}`), 0o644)
	h.OK("start", cfg, "-s")
	p := h.WaitStatus("own", "online")
	e2e.WaitLog(t, p.Pm2Env.PmOutLogPath, 30*time.Second, func(s string) bool { return strings.Count(s, "\n") >= 40000 })
	rotated := logs.Rotated(p.Pm2Env.PmOutLogPath)
	if len(rotated) < 2 {
		t.Fatalf("%d rotated files; 2.5 MB at 1 MB a file should give 2", len(rotated))
	}

	h.OK("start", e2e.AppBin, "--name", "quiet", "-s", "--", "-echo-stdin")
	q := h.WaitStatus("quiet", "online")
	h.OK("set", "pm2-logrotate:retain", "2")
	h.OK("set", "max_size", "1K")
	for i := range 4 {
		h.OK("send", "quiet", fmt.Sprintf("%d %s", i, strings.Repeat("y", 2000)))
	}
	e2e.WaitUntil(t, 10*time.Second, "quiet's file rotated, two kept", func() bool {
		r := logs.Rotated(q.Pm2Env.PmOutLogPath)
		return len(r) == 2 && strings.HasSuffix(e2e.LogText(t, q.Pm2Env.PmOutLogPath), "stdin=3 "+strings.Repeat("y", 2000)+"\n")
	})
	if got := strings.TrimSpace(h.OK("get", "retain")); got != "2" {
		t.Fatalf("tend get retain: %q", got)
	}
	// The app with its own keys keeps them.
	if n := len(logs.Rotated(p.Pm2Env.PmOutLogPath)); n != len(rotated) {
		t.Fatalf("the own app's retain (all) was overridden: %d rotated files, was %d", n, len(rotated))
	}

	// An external logrotate moves the file: after reloadLogs, lines go to a new file at the path.
	moved := q.Pm2Env.PmOutLogPath + ".moved"
	h.OK("set", "max_size", "0")
	if err := os.Rename(q.Pm2Env.PmOutLogPath, moved); err != nil {
		t.Fatal(err)
	}
	h.OK("reloadLogs")
	h.OK("send", "quiet", "after the move")
	e2e.WaitFile(t, q.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return s == "stdin=after the move\n" })
}
