//go:build linux

package logs

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func parkedPumps() int {
	w, err := sharedWaiter()
	if err != nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.parked)
}

// Quiet streams cost no goroutine: each pump is parked in the shared waiter, wakes on data,
// writes it, lets go of its buffer and parks again, and ends at EOF.
func TestGoParksQuietStreams(t *testing.T) {
	defer func(d time.Duration) { releaseAfter = d }(releaseAfter)
	releaseAfter = 20 * time.Millisecond
	const n = 40
	base := parkedPumps()
	goroutines := runtime.NumGoroutine()
	dir := t.TempDir()
	fs := NewFiles()
	pipes := make([]*testPipe, n)
	paths := make([]string, n)
	done := make(chan error, n)
	for i := range n {
		pipes[i] = newTestPipe(t)
		paths[i] = filepath.Join(dir, strings.Repeat("x", i+1)+".log")
		f, err := fs.Open(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		Go(pipes[i].r, StreamConfig{Files: []*File{f}}, nil, func(err error) {
			f.Close()
			done <- err
		})
	}
	waitUntil(t, func() bool { return parkedPumps() == base+n }, "every quiet pump is parked")
	if extra := runtime.NumGoroutine() - goroutines; extra > 1 { // the waiter's own, at most
		t.Fatalf("%d parked pumps hold %d goroutines; want none", n, extra)
	}

	for i, p := range pipes {
		if err := writeAll(p.w, []byte("line "+strings.Repeat("x", i+1)+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	for i, path := range paths {
		want := "line " + strings.Repeat("x", i+1) + "\n"
		waitUntil(t, func() bool {
			b, _ := os.ReadFile(path)
			return string(b) == want
		}, "pump "+path+" wrote its line")
	}
	waitUntil(t, func() bool { return parkedPumps() == base+n }, "every pump parked again once quiet")

	for _, p := range pipes {
		p.closeW()
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatalf("a pump ended with %v at EOF", err)
		}
	}
	if got := parkedPumps(); got != base {
		t.Fatalf("%d pumps still parked after EOF", got-base)
	}
}

// A panic in the reader is told, and a fresh pump reads on from the same pipe without losing
// the line it was writing; past MaxPanics it gives up and says so.
func TestGoReadsOnAfterAPanic(t *testing.T) {
	df, err := ParseDateFormat("YYYY")
	if err != nil {
		t.Fatal(err)
	}
	for _, always := range []bool{false, true} {
		var calls, panics atomic.Int64
		now := func() time.Time {
			if calls.Add(1) <= 2 || always {
				panic("boom")
			}
			return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		p := newTestPipe(t)
		path, f := openOut(t)
		done := make(chan error, 1)
		Go(p.r, StreamConfig{Files: []*File{f}, Date: df, Location: time.UTC, Now: now},
			func(any, []byte) { panics.Add(1) },
			func(err error) { f.Close(); done <- err })
		if err := writeAll(p.w, []byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		if always {
			err := <-done
			if err == nil || !strings.Contains(err.Error(), "panicked 10 times") || panics.Load() != MaxPanics {
				t.Fatalf("a reader that always panics: %v after %d panics", err, panics.Load())
			}
			continue
		}
		p.closeW()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if string(b) != "2026: hello\n" || panics.Load() != 2 {
			t.Fatalf("after %d panics the file holds %q; want the line once", panics.Load(), b)
		}
	}
}

// A woken pump learns that its pipe reached its end without taking a buffer to read it.
func TestDrained(t *testing.T) {
	p := newTestPipe(t)
	if drained(p.r) {
		t.Fatal("an empty pipe with a writer is not at its end")
	}
	if err := writeAll(p.w, []byte("x")); err != nil {
		t.Fatal(err)
	}
	p.closeW()
	if drained(p.r) {
		t.Fatal("a pipe that still holds a byte is not at its end")
	}
	var b [1]byte
	if n, err := unix.Read(p.r, b[:]); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if !drained(p.r) {
		t.Fatal("an empty pipe with no writer is at its end")
	}
}
