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
)

func TestLogFloodKeepsEveryLineInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const n = 200000
	h.ok("start", appBin, "--name", "flood", "-s", "--", "-flood", fmt.Sprint(n), "-stderr", "5")
	p, _ := h.get("flood")
	// 12.6 MB: the file rotates at tend's default 10 MB on the way, and no line is lost.
	out := waitLog(t, p.Pm2Env.PmOutLogPath, 30*time.Second, func(s string) bool { return strings.Count(s, "\n") >= n })
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
	waitFile(t, p.Pm2Env.PmErrLogPath, 5*time.Second, func(s string) bool { return s == "err 0\nerr 1\nerr 2\nerr 3\nerr 4\n" })

	got := h.ok("logs", "flood", "--lines", "2", "--nostream", "--out")
	if !strings.Contains(got, "0|flood | line 0199998") || !strings.Contains(got, "0|flood | line 0199999") || strings.Contains(got, "line 0199997") {
		t.Fatalf("logs --lines 2:\n%s", got)
	}
	raw := h.ok("logs", "flood", "--lines", "1", "--nostream", "--err", "--raw")
	if strings.TrimSpace(raw) != "err 4" {
		t.Fatalf("logs --raw --err: %q", raw)
	}
	h.ok("flush", "flood")
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
	h.ok("start", appBin, "--name", "timed", "--time", "-o", custom, "-l", combined, "-s", "--", "-flood", "3", "-stderr", "1")
	h.ok("start", appBin, "--name", "fmt", "--log-date-format", "YYYY/MM/DD [at] HH", "-s", "--", "-flood", "1")
	h.ok("start", appBin, "--name", "quiet", "-o", "/dev/null", "-e", "NULL", "-s", "--", "-flood", "5")

	out := waitFile(t, custom, 5*time.Second, func(s string) bool { return strings.Count(s, "\n") == 3 })
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: line 000000\d x+$`)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !stamp.MatchString(l) {
			t.Fatalf("--time line %q does not match %s", l, stamp)
		}
	}
	all := waitFile(t, combined, 5*time.Second, func(s string) bool { return strings.Count(s, "\n") == 4 })
	if !strings.Contains(all, ": err 0\n") {
		t.Fatalf("combined log lacks stderr: %q", all)
	}
	f, _ := h.get("fmt")
	waitFile(t, f.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool {
		return regexp.MustCompile(`^\d{4}/\d\d/\d\d at \d\d: line 0000000`).MatchString(s)
	})
	q, _ := h.get("quiet")
	if q.Pm2Env.PmOutLogPath != "/dev/null" {
		t.Fatalf("disabled out log path %q", q.Pm2Env.PmOutLogPath)
	}
	entries, _ := os.ReadDir(filepath.Join(h.home, "logs"))
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
	h.ok("start", script, "-s")
	cmd := newCmd(h, "logs", "--raw", "--lines", "0")
	out := startBackground(t, cmd)
	waitFor(t, 5*time.Second, "logs following the app's lines", func() bool { return strings.Count(out.String(), "tick") >= 3 })
	h.ok("start", appBin, "--name", "late", "-s", "--", "-flood", "2")
	waitFor(t, 5*time.Second, "logs showing an app started after it", func() bool {
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
		h.ok("start", appBin, "--name", name, "-s", "--", "-flood-on-signal", "200000", "-ready")
		// Online at spawn: deleted before its handler is installed, the app would die of the
		// signal without a line. It says when the handler is in place.
		p := h.waitAppReady(name)
		h.ok("delete", name, "-s")
		out := waitFile(t, p.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.HasSuffix(s, "END\n") })
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
	h.expectLogError("is a FIFO that nobody reads")
	r := h.run("start", appBin, "--name", "piped", "-o", fifo)
	if r.code != 1 || !strings.Contains(r.err, "is a FIFO that nobody reads") {
		t.Fatalf("exit %d, %q", r.code, r.err)
	}
	h.ok("start", appBin, "--name", "other", "-s")
	h.waitStatus("other", "online")
}

// A million lines with rotation every 1 MB, gzip on, every file kept: across the 60-odd files,
// every line once, whole, in order. Then a live `tend set` changes the size for the running app,
// and `tend reloadLogs` follows a file an external logrotate moved.
func TestRotationUnderFlood(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	const n = 1_000_000
	cfg := filepath.Join(dir, "apps.json")
	os.WriteFile(cfg, []byte(`{"apps": [{"name": "flood", "script": "`+appBin+`", "args": ["-echo-stdin", "-flood", "`+fmt.Sprint(n)+`"],
		"max_size": "1M", "retain": "all", "compress": true}]}`), 0o644)
	h.ok("start", cfg, "-s")
	p := h.waitStatus("flood", "online")
	out := waitLog(t, p.Pm2Env.PmOutLogPath, 60*time.Second, func(s string) bool { return strings.Count(s, "\n") >= n })
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines across the files, want %d (lost or repeated)", len(lines), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("line %07d %s", i, strings.Repeat("x", 50)); l != want {
			t.Fatalf("line %d is %.80q, want %q (lost, repeated or torn)", i, l, want)
		}
	}
	rotated := logs.Rotated(p.Pm2Env.PmOutLogPath)
	gz := 0
	for _, r := range rotated {
		if strings.HasSuffix(r, ".gz") {
			gz++
		}
	}
	t.Logf("%d lines in %d rotated files (%d gzipped) and the current one", n, len(rotated), gz)
	if len(rotated) < 60 {
		t.Fatalf("%d rotated files; 63 MB at 1 MB a file should give about 60", len(rotated))
	}

	// tend set applies at once to the running apps that do not set their own keys: a quiet
	// app's file rotates at the new size, and retain 2 keeps two.
	h.ok("start", appBin, "--name", "quiet", "-s", "--", "-echo-stdin")
	q := h.waitStatus("quiet", "online")
	h.ok("set", "pm2-logrotate:retain", "2")
	h.ok("set", "max_size", "1K")
	for i := range 4 {
		h.ok("send", "quiet", fmt.Sprintf("%d %s", i, strings.Repeat("y", 2000)))
	}
	waitFor(t, 10*time.Second, "quiet's file rotated, two kept", func() bool {
		r := logs.Rotated(q.Pm2Env.PmOutLogPath)
		return len(r) == 2 && strings.HasSuffix(logText(t, q.Pm2Env.PmOutLogPath), "stdin=3 "+strings.Repeat("y", 2000)+"\n")
	})
	if got := strings.TrimSpace(h.ok("get", "retain")); got != "2" {
		t.Fatalf("tend get retain: %q", got)
	}
	// The flood app keeps its own keys.
	if n := len(logs.Rotated(p.Pm2Env.PmOutLogPath)); n != len(rotated) {
		t.Fatalf("the flood app's own retain (all) was overridden: %d rotated files, was %d", n, len(rotated))
	}

	// An external logrotate moves the file: after reloadLogs, lines go to a new file at the path.
	moved := q.Pm2Env.PmOutLogPath + ".moved"
	h.ok("set", "max_size", "0")
	if err := os.Rename(q.Pm2Env.PmOutLogPath, moved); err != nil {
		t.Fatal(err)
	}
	h.ok("reloadLogs")
	h.ok("send", "quiet", "after the move")
	waitFile(t, q.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return s == "stdin=after the move\n" })
}
