package logs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()

	var big strings.Builder
	var bigLines []string
	for i := range 100000 {
		l := fmt.Sprintf("line %d %s", i, strings.Repeat("x", i%40))
		bigLines = append(bigLines, l)
		big.WriteString(l + "\n")
	}
	if big.Len() < 4*tailBlock {
		t.Fatal("test file is not bigger than a few blocks")
	}
	huge := strings.Repeat("h", 3*tailBlock+17)

	for _, tc := range []struct {
		name    string
		content string
		n       int
		want    []string
	}{
		{"last lines of a big file", big.String(), 10, bigLines[len(bigLines)-10:]},
		{"many blocks back", big.String(), 20000, bigLines[len(bigLines)-20000:]},
		{"whole big file", big.String(), 200000, bigLines},
		{"fewer lines than asked", "a\nb\nc\n", 10, []string{"a", "b", "c"}},
		{"exactly n", "a\nb\nc\n", 3, []string{"a", "b", "c"}},
		{"no trailing newline", "a\nb\nc", 2, []string{"b", "c"}},
		{"single line without newline", "only", 5, []string{"only"}},
		{"empty lines", "a\n\n\nb\n", 3, []string{"", "", "b"}},
		{"one empty line", "\n", 4, []string{""}},
		{"carriage returns kept", "a\r\nb\r\n", 1, []string{"b\r"}},
		{"lines longer than a block", "x\n" + huge + "\n" + huge + "\ny\n", 3, []string{huge, huge, "y"}},
		{"empty file", "", 10, nil},
		{"zero lines asked", "a\nb\n", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			writeFile(t, path, tc.content)
			lines, end, err := Tail(path, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if end != int64(len(tc.content)) {
				t.Errorf("end = %d, want %d", end, len(tc.content))
			}
			if !slices.Equal(lines, tc.want) {
				if len(lines) != len(tc.want) {
					t.Fatalf("got %d lines, want %d", len(lines), len(tc.want))
				}
				for i := range lines {
					if lines[i] != tc.want[i] {
						t.Fatalf("line %d = %.40q, want %.40q", i, lines[i], tc.want[i])
					}
				}
			}
		})
	}

	lines, end, err := Tail(filepath.Join(dir, "missing"), 10)
	if lines != nil || end != 0 || err != nil {
		t.Errorf("Tail(missing) = %v, %d, %v; want nil, 0, nil", lines, end, err)
	}
}

// follow runs Follow in the background and returns its lines on a channel.
func follow(t *testing.T, path string, offset int64) (lines <-chan string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, path, offset, 5*time.Millisecond, func(line []byte) { ch <- string(line) })
	}()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return ch, stop
}

func expectLines(t *testing.T, ch <-chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-ch:
			if got != w {
				t.Fatalf("got line %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no line %q after 5s", w)
		}
	}
}

func expectNothing(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected line %q", got)
	case <-time.After(50 * time.Millisecond):
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestFollowAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out.log")
	writeFile(t, path, "old 1\nold 2\n")
	_, end, err := Tail(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	ch, stop := follow(t, path, end)
	expectNothing(t, ch)
	appendFile(t, path, "new 1\nnew 2 ")
	expectLines(t, ch, "new 1")
	expectNothing(t, ch) // a line without '\n' waits for the rest
	appendFile(t, path, "and its end\n\nlast\n")
	expectLines(t, ch, "new 2 and its end", "", "last")
	if err := stop(); err != nil {
		t.Fatalf("Follow returned %v after cancel", err)
	}
}

func TestFollowTruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out.log")
	writeFile(t, path, "")
	ch, _ := follow(t, path, 0)
	appendFile(t, path, "a fairly long line before the flush\n")
	expectLines(t, ch, "a fairly long line before the flush")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "after\n")
	expectLines(t, ch, "after")
	appendFile(t, path, "more\n")
	expectLines(t, ch, "more")
}

func TestFollowWaitsForFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.log")
	ch, _ := follow(t, path, 0)
	expectNothing(t, ch)
	appendFile(t, path, "hello\n")
	expectLines(t, ch, "hello")
}

func TestFollowRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out.log")
	writeFile(t, path, "")
	ch, _ := follow(t, path, 0)
	appendFile(t, path, "one\n")
	expectLines(t, ch, "one")
	// logrotate: the file is moved away, the writer's last line still goes
	// to it, then a new file appears.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".1", "two\n")
	time.Sleep(20 * time.Millisecond)
	appendFile(t, path, "three\n")
	expectLines(t, ch, "two", "three")
}

func TestFollowCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out.log")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, path, 0, time.Hour, func([]byte) {}) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return after cancel")
	}
}
