package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/logs"
)

// WaitFile polls until the file's content satisfies cond.
func WaitFile(t *testing.T, path string, timeout time.Duration, cond func(string) bool) string {
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

// LogText is what an app's log file holds with the files rotation moved aside before it,
// oldest first (gzip ones read through).
func LogText(t *testing.T, path string) string {
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

// WaitLog is WaitFile over LogText: the log with its rotated files.
func WaitLog(t *testing.T, path string, timeout time.Duration, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var text string
	for time.Now().Before(deadline) {
		if text = LogText(t, path); cond(text) {
			return text
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("log %s (with its rotated files) did not reach the expected content within %s; it has %d bytes: %.500s", path, timeout, len(text), text)
	return ""
}

// WriteApp writes an app's source (body) as dir/name and returns its path.
func WriteApp(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TickFaults reads a TickerJS log and counts the breaks in it: a line lost, doubled, torn or out
// of order each break the sequence 0, 1, 2… first describes the first break.
func TickFaults(path string) (lines, bad int, first string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, "", err
	}
	next := 0
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		lines++
		n, err := strconv.Atoi(strings.TrimPrefix(l, "tick "))
		if err != nil || !strings.HasPrefix(l, "tick ") || n != next {
			bad++
			if first == "" {
				first = fmt.Sprintf("line %d is %.40q, want \"tick %d\"", lines, l, next)
			}
		}
		if err == nil {
			next = n + 1
		}
	}
	return lines, bad, first, nil
}

// InstallExec copies src to dst, executable by everyone, through install(1): a file this test
// process held open for writing would be inherited by whatever another test forks meanwhile,
// until that child execs, and an exec of dst then fails with ETXTBSY ("text file busy").
func InstallExec(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("install", "-m", "0755", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("install %s: %v: %s", dst, err, out)
	}
}
