package logs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readRotated is every line of the log at path and its rotated files, oldest first, gzip or not.
func readRotated(t *testing.T, path string) (lines []string, files int) {
	t.Helper()
	for _, p := range append(Rotated(path), path) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%s ends inside a line: %q", p, tailOf(b))
		}
		if len(b) > 0 {
			lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		}
		files++
	}
	return lines, files
}

// Two streams flooding one combined file that rotates every 1 MB: every line of each stream is
// in the files once, whole, in its order; a rotation never falls inside a write.
func TestRotateFloodLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "combined.log")
	fs := NewFiles()
	rot := Rotation{MaxSize: 1 << 20, Retain: -1}
	f1, err := fs.OpenRotating(path, rot)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := fs.OpenRotating(path, rot)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200_000 // per stream; about 2 × 7 MB
	mk := func(tag string) []string {
		lines := make([]string, n)
		for i := range lines {
			lines[i] = fmt.Sprintf("%s %07d %s", tag, i, strings.Repeat("x", i%40))
		}
		return lines
	}
	outLines, errLines := mk("out"), mk("err")
	pumpTwo(t, outLines, errLines, []*File{f1}, []*File{f2})
	f1.Close()
	f2.Close()
	lines, files := readRotated(t, path)
	checkTwo(t, lines, outLines, errLines)
	if files < 10 {
		t.Fatalf("%d files: the log did not rotate every 1 MB", files)
	}
	for _, p := range Rotated(path) {
		if st, _ := os.Stat(p); st.Size() > 1<<20+64<<10 {
			t.Errorf("%s holds %d bytes, past 1 MB and one write", p, st.Size())
		}
	}
}

// Rotated files are named as pm2-logrotate names them, unique within a second; Retain keeps the
// newest; Compress gzips them off the write path.
func TestRotateNamesRetainCompress(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api-out.log")
	fs := NewFiles()
	var failed []error
	var mu sync.Mutex
	fs.OnError = func(err error) { mu.Lock(); failed = append(failed, err); mu.Unlock() }
	f, err := fs.OpenRotating(path, Rotation{MaxSize: 100, Retain: 3, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if err := f.Write([]byte(fmt.Sprintf("line %d %s\n", i, strings.Repeat("y", 100)))); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	fs.Drain()
	rotated := Rotated(path)
	if len(rotated) != 3 {
		t.Fatalf("retain 3: %q", rotated)
	}
	for _, p := range rotated {
		base := filepath.Base(p)
		if !strings.HasPrefix(base, "api-out__") || !strings.HasSuffix(base, ".log.gz") {
			t.Errorf("rotated name %s: want api-out__<date>[.N].log.gz", base)
		}
	}
	lines, _ := readRotated(t, path)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "line 5 ") || !strings.HasPrefix(lines[2], "line 7 ") {
		t.Fatalf("the newest three lines should be kept, in order: %.40q", lines)
	}
	if len(failed) > 0 {
		t.Fatalf("errors: %v", failed)
	}
}

// A rotation by time moves the file once its time is due, before the next write, named after the
// time it was due; an empty file is not rotated.
func TestRotateByTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	fs := NewFiles()
	sched := &fakeSchedule{next: time.Now().Add(-time.Second)}
	f, err := fs.OpenRotating(path, Rotation{Interval: sched, Retain: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	due := f.due
	f.Write([]byte("before\n")) // due already, but the file was empty: nothing to move
	if got := Rotated(path); len(got) != 0 {
		t.Fatalf("an empty file rotated: %q", got)
	}
	f.mu.Lock()
	f.due = time.Now().Add(-time.Millisecond)
	due = f.due
	f.mu.Unlock()
	f.Write([]byte("after\n"))
	got := Rotated(path)
	if len(got) != 1 {
		t.Fatalf("rotated: %q", got)
	}
	if want := "t__" + string(DefaultRotateDate.Append(nil, due)) + ".log"; filepath.Base(got[0]) != want {
		t.Errorf("named %s, want %s", filepath.Base(got[0]), want)
	}
	if b, _ := os.ReadFile(got[0]); string(b) != "before\n" {
		t.Errorf("rotated file holds %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "after\n" {
		t.Errorf("current file holds %q", b)
	}
}

type fakeSchedule struct{ next time.Time }

func (s *fakeSchedule) Next(time.Time) time.Time { return s.next.Add(time.Hour) }

// A truncation by someone else (tend flush, copytruncate) resets the size that decides.
func TestRotateAfterTruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	fs := NewFiles()
	f, err := fs.OpenRotating(path, Rotation{MaxSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte(strings.Repeat("a", 40) + "\n"))
	os.Truncate(path, 0)
	f.Write([]byte("b\n"))
	if got := Rotated(path); len(got) != 0 {
		t.Fatalf("rotated after a truncation: %q", got)
	}
}

// Rotated files of one clock tick (the file system's mtime is coarse) are ordered by their .N.
func TestRotatedOrderWithinATick(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a-out.log")
	tick := time.Now().Truncate(time.Second)
	d := "a-out__2026-11-30_02-15-00"
	names := []string{d + ".log", d + ".1.log.gz", d + ".2.log", d + ".10.log"}
	for _, n := range names {
		p := filepath.Join(dir, n)
		os.WriteFile(p, nil, 0o640)
		os.Chtimes(p, tick, tick)
	}
	var got []string
	for _, p := range Rotated(path) {
		got = append(got, filepath.Base(p))
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("order %q, want %q", got, names)
	}
}

// Retain removes only files tend rotated: another app named "<name>__x", and files a user keeps
// beside the logs, are not taken for rotated ones. Retain 0 keeps none (pm2-logrotate's 0).
func TestRetainTouchesOnlyRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v-out.log")
	keep := []string{"v-out__x-out.log", "v-out__x-error.log", "v-out__backup-before-migration.log", "v-out__notes.txt"}
	for _, k := range keep {
		os.WriteFile(filepath.Join(dir, k), []byte("mine\n"), 0o644)
	}
	fs := NewFiles()
	f, err := fs.OpenRotating(path, Rotation{MaxSize: 10, Retain: 0})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.Write([]byte("a line past 10 bytes\n"))
	}
	f.Close()
	fs.Drain()
	for _, k := range keep {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Errorf("%s was removed: %v", k, err)
		}
	}
	if got := Rotated(path); len(got) != 0 {
		t.Errorf("retain 0 kept %q", got)
	}
}
