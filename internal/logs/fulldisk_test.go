package logs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// smallDisk mounts a tmpfs of size bytes on a temporary folder (root only; the test is skipped
// otherwise) and unmounts it when the test ends.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// A write that fills the disk part way is undone to the end of its last whole line: the file
// never holds part of a line, and the error says how many lines were not written.
func TestFullDiskKeepsWholeLines(t *testing.T) {
	dir := smallDisk(t, 16<<10)
	fs := NewFiles()
	f, err := fs.Open(filepath.Join(dir, "app-out.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	const n = 2000
	for i := range n {
		fmt.Fprintf(&b, "line %05d %s\n", i, strings.Repeat("z", 20))
	}
	err = f.Write([]byte(b.String()))
	var drop *DropError
	if !errors.As(err, &drop) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("want a DropError for ENOSPC, got %v", err)
	}
	data, _ := os.ReadFile(f.Path())
	if len(data) == 0 || data[len(data)-1] != '\n' {
		t.Fatalf("the file ends inside a line: %q", tailOf(data))
	}
	kept := strings.Count(string(data), "\n")
	if kept+drop.Lines != n || kept == 0 {
		t.Fatalf("%d lines in the file + %d dropped, want %d", kept, drop.Lines, n)
	}
}

// Through a pump: lines that meet a full disk are dropped and counted, the app's pipe keeps
// draining, and once space is back the file says how many were lost, then goes on.
func TestFullDiskThenSpaceAgain(t *testing.T) {
	dir := smallDisk(t, 64<<10)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 60<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := NewFiles()
	path := filepath.Join(dir, "app-out.log")
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var dropped, resumed, errs atomic.Int64
	pp := newTestPipe(t)
	done := make(chan error, 1)
	go func() {
		done <- Pump(pp.r, StreamConfig{Files: []*File{f},
			OnError:  func(error) { errs.Add(1) },
			OnDrop:   func(n int, _ error) { dropped.Add(int64(n)) },
			OnResume: func(n int) { resumed.Add(int64(n)) }})
	}()
	first := joinLines(testLines(3000, "a"))
	if err := writeAll(pp.w, first); err != nil {
		t.Fatal(err)
	}
	// Every line of the first batch either in the file or dropped: the pipe was drained.
	waitUntil(t, func() bool {
		data, _ := os.ReadFile(path)
		return dropped.Load() > 0 && int64(strings.Count(string(data), "\n"))+dropped.Load() == 3000
	}, "the first batch written or dropped")
	os.Remove(filler) // space comes back
	if err := writeAll(pp.w, []byte("after the space came back\n")); err != nil {
		t.Fatal(err)
	}
	pp.closeW()
	if err := <-done; err == nil {
		t.Fatal("Pump returned no error after a full disk")
	}
	f.Close()
	data, _ := os.ReadFile(path)
	text := string(data)
	if !strings.HasSuffix(text, "after the space came back\n") {
		t.Fatalf("the file does not go on after the space came back: %q", tailOf(data))
	}
	mark := fmt.Sprintf("[tend: %d lines were not written here: write %s: no space left on device]\n", dropped.Load(), path)
	if !strings.Contains(text, mark) {
		t.Fatalf("no marker %q in %q", mark, tailOf(data))
	}
	kept := strings.Count(text, "\n") - 2 // the marker and the last line
	if int64(kept)+dropped.Load() != 3000 || resumed.Load() != dropped.Load() || errs.Load() != 1 {
		t.Fatalf("%d kept + %d dropped, want 3000; resumed %d; OnError %d times (want once)", kept, dropped.Load(), resumed.Load(), errs.Load())
	}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if !strings.HasPrefix(l, "a ") && !strings.HasPrefix(l, "[tend: ") && l != "after the space came back" && l != "" && !strings.HasPrefix(l, "\r") {
			t.Fatalf("a torn line: %q", l)
		}
	}
}

// openOut opens a fresh out.log in a temporary directory, as a pump's destination.
func openOut(t *testing.T) (path string, f *File) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "out.log")
	f, err := NewFiles().Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, f
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
