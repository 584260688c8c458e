//go:build linux

package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// testPipe is a pipe made like the daemon makes them; both ends are closed
// when the test ends unless closed before.
type testPipe struct {
	r, w    int
	mu      sync.Mutex
	wClosed bool
}

func newTestPipe(t testing.TB) *testPipe {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	p := &testPipe{r: fds[0], w: fds[1]}
	t.Cleanup(func() {
		p.closeW()
		unix.Close(p.r)
	})
	return p
}

func (p *testPipe) closeW() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.wClosed {
		p.wClosed = true
		unix.Close(p.w)
	}
}

// feed writes data in chunks whose sizes cycle through sizes, then closes
// the write end. It runs in its own goroutine; the returned channel carries
// its error.
func (p *testPipe) feed(data []byte, sizes ...int) <-chan error {
	if len(sizes) == 0 {
		sizes = []int{len(data) + 1}
	}
	done := make(chan error, 1)
	go func() {
		defer p.closeW()
		for i := 0; len(data) > 0; i++ {
			n := min(sizes[i%len(sizes)], len(data))
			if err := writeAll(p.w, data[:n]); err != nil {
				done <- err
				return
			}
			data = data[n:]
		}
		done <- nil
	}()
	return done
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// pumpFile runs Pump on p into a fresh file and returns the file's content.
func pumpFile(t *testing.T, p *testPipe, cfg StreamConfig) []byte {
	t.Helper()
	path, f := openOut(t)
	cfg.Files = append(cfg.Files, f)
	if err := Pump(p.r, cfg); err != nil {
		t.Fatalf("Pump: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testLines returns n lines of varied length and content, some ending in
// "\r\n", some empty, some with multi-byte runes.
func testLines(n int, tag string) []string {
	lines := make([]string, n)
	for i := range lines {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %d ", tag, i)
		for j := range i % 97 {
			b.WriteByte(byte('a' + j%26))
		}
		switch i % 11 {
		case 3:
			b.WriteString("\r")
		case 5:
			b.WriteString(" ünïcödé ✓")
		case 7:
			b.Reset()
		}
		lines[i] = b.String()
	}
	return lines
}

func joinLines(lines []string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// lineWriter records each Write and checks it holds whole lines only.
type lineWriter struct {
	t      *testing.T
	buf    bytes.Buffer
	writes int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if len(p) == 0 || p[len(p)-1] != '\n' {
		w.t.Errorf("Echo got a write that does not end a line: %q", tailOf(p))
	}
	w.writes++
	return w.buf.Write(p)
}

func tailOf(p []byte) []byte {
	if len(p) > 40 {
		return p[len(p)-40:]
	}
	return p
}

func TestPumpOddChunks(t *testing.T) {
	want := joinLines(testLines(20000, "line"))
	for _, sizes := range [][]int{{1, 2, 3}, {7, 13, 4093, 65537, 1}, {len(want)}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			p := newTestPipe(t)
			fed := p.feed(want, sizes...)
			echo := &lineWriter{t: t}
			got := pumpFile(t, p, StreamConfig{Echo: echo})
			if err := <-fed; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("file differs from input: %s", firstDiff(got, want))
			}
			if !bytes.Equal(echo.buf.Bytes(), want) {
				t.Fatalf("echo differs from input: %s", firstDiff(echo.buf.Bytes(), want))
			}
		})
	}
}

func firstDiff(got, want []byte) string {
	g := strings.Split(string(got), "\n")
	w := strings.Split(string(want), "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d: got %q, want %q", i, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}

func TestPumpPartialLastLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"x", "x\n"},
		{"a\nb", "a\nb\n"},
		{"a\nb\n", "a\nb\n"},
		{"a\r\nb\r", "a\r\nb\r\n"},
		{"\n\n", "\n\n"},
	} {
		p := newTestPipe(t)
		fed := p.feed([]byte(tc.in), 1)
		got := pumpFile(t, p, StreamConfig{})
		if err := <-fed; err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("Pump(%q) wrote %q, want %q", tc.in, got, tc.want)
		}
	}
}

// splitPieces undoes the splitting of long lines: it returns the lines as
// written, each with the pieces it was made of, and checks each piece's size
// and UTF-8 boundary.
func splitPieces(t *testing.T, out []byte, prefix string, maxLine int) (lines []string, pieces [][]string) {
	t.Helper()
	var cur []string
	for _, l := range strings.SplitAfter(string(out), "\n") {
		if l == "" {
			continue
		}
		l = strings.TrimSuffix(l, "\n")
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("line %q lacks prefix %q", l, prefix)
		}
		l = l[len(prefix):]
		piece, more := strings.CutSuffix(l, splitMarker)
		if len(piece) > maxLine {
			t.Fatalf("piece of %d bytes exceeds %d", len(piece), maxLine)
		}
		if !utf8.ValidString(piece) {
			t.Fatalf("piece cut inside a UTF-8 sequence: ...%q", piece[max(0, len(piece)-8):])
		}
		cur = append(cur, piece)
		if !more {
			lines = append(lines, strings.Join(cur, ""))
			pieces = append(pieces, cur)
			cur = nil
		}
	}
	if cur != nil {
		t.Fatalf("output ends with a marked piece")
	}
	return lines, pieces
}

func TestPumpLongLine(t *testing.T) {
	// 200 KiB of mixed one-, two-, three- and four-byte runes, so cuts at
	// 64 KiB land inside sequences.
	var b strings.Builder
	for b.Len() < 200<<10 {
		b.WriteString("ab€é𝄞")
	}
	long := b.String()
	input := []string{"before", long, "after", strings.Repeat("z", DefaultMaxLine), "end"}
	data := joinLines(input)
	for _, sizes := range [][]int{{len(data)}, {4096, 333}, {70000}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			p := newTestPipe(t)
			fed := p.feed(data, sizes...)
			out := pumpFile(t, p, StreamConfig{})
			if err := <-fed; err != nil {
				t.Fatal(err)
			}
			lines, pieces := splitPieces(t, out, "", DefaultMaxLine)
			if len(lines) != len(input) {
				t.Fatalf("got %d lines, want %d", len(lines), len(input))
			}
			for i := range input {
				if lines[i] != input[i] {
					t.Fatalf("line %d differs after joining its pieces", i)
				}
			}
			if n := len(pieces[1]); n != 4 {
				t.Errorf("200 KiB line split into %d pieces, want 4", n)
			}
			if n := len(pieces[3]); n != 1 {
				t.Errorf("line of exactly MaxLine bytes split into %d pieces", n)
			}
		})
	}
}

func TestPumpSmallMaxLine(t *testing.T) {
	date, err := ParseDateFormat("HH:mm")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 13, 47, 35, 0, time.UTC)
	p := newTestPipe(t)
	fed := p.feed([]byte("ééééé\nabcdefgh\nabc\n\xff\xff\xff\xff\xff\xff\nok"), 3)
	out := pumpFile(t, p, StreamConfig{MaxLine: 5, Date: date, Location: time.UTC, Now: func() time.Time { return now }})
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	want := "13:47: éé [tend: line split]\n" +
		"13:47: éé [tend: line split]\n" +
		"13:47: é\n" +
		"13:47: abcde [tend: line split]\n" +
		"13:47: fgh\n" +
		"13:47: abc\n" +
		"13:47: \xff\xff\xff\xff\xff [tend: line split]\n" +
		"13:47: \xff\n" +
		"13:47: ok\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestPumpDatePrefix(t *testing.T) {
	zone := time.FixedZone("x", 5*3600+1800)
	start := time.Date(2026, 11, 21, 13, 47, 35, 123e6, time.UTC)
	var mu sync.Mutex
	calls := 0
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return start.Add(time.Duration(calls-1) * 250 * time.Millisecond)
	}
	lines := testLines(3000, "dated")
	for _, tc := range []struct {
		layout string
		re     func(string) bool
	}{
		{"YYYY-MM-DD HH:mm:ss Z", func(p string) bool {
			return strings.HasPrefix(p, "2026-11-21 19:") && strings.HasSuffix(p, " +05:30: ")
		}},
		{TimeFormat, func(p string) bool { return strings.HasPrefix(p, "2026-11-21T19:") }},
		{"HH:mm:ss.SSS", func(p string) bool { return strings.HasPrefix(p, "19:") && p[8] == '.' }},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			mu.Lock()
			calls = 0
			mu.Unlock()
			date, err := ParseDateFormat(tc.layout)
			if err != nil {
				t.Fatal(err)
			}
			p := newTestPipe(t)
			fed := p.feed(joinLines(lines), 1000, 7)
			out := pumpFile(t, p, StreamConfig{Date: date, Location: zone, Now: now})
			if err := <-fed; err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(got) != len(lines) {
				t.Fatalf("got %d lines, want %d", len(got), len(lines))
			}
			width := len(date.Append(nil, start)) + len(": ")
			for i, l := range got {
				if len(l) < width || !tc.re(l[:width]) || l[width:] != lines[i] {
					t.Fatalf("line %d = %q, want a %q prefix and %q", i, l, tc.layout, lines[i])
				}
			}
		})
	}
	// The first line's time is the first call of Now, formatted exactly.
	date, _ := ParseDateFormat("YYYY-MM-DD HH:mm:ss.SSS Z")
	p := newTestPipe(t)
	fed := p.feed([]byte("hello\n"))
	out := pumpFile(t, p, StreamConfig{Date: date, Location: zone, Now: func() time.Time { return start }})
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if want := "2026-11-21 19:17:35.123 +05:30: hello\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestPumpSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "combined.log")
	fs := NewFiles()
	f1, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := fs.Open(filepath.Join(filepath.Dir(path), ".", "x", "..", "combined.log"))
	if err != nil {
		t.Fatal(err)
	}
	if f1 != f2 {
		t.Fatal("two opens of one path gave two files")
	}
	// Long lines make a torn write likely if the mutex did not cover it.
	mk := func(tag string) []string {
		lines := make([]string, 3000)
		for i := range lines {
			lines[i] = fmt.Sprintf("%s %d %s", tag, i, strings.Repeat(tag[:1], i%5000))
		}
		return lines
	}
	outLines, errLines := mk("out"), mk("err")
	pumpTwo(t, outLines, errLines, []*File{f1}, []*File{nil, f2})
	f1.Close()
	f2.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkTwo(t, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), outLines, errLines)
}

// pumpTwo pumps two streams at once, out's lines into outFiles and err's into errFiles, each
// fed in odd chunks, and returns once both reached EOF.
func pumpTwo(t *testing.T, outLines, errLines []string, outFiles, errFiles []*File) {
	t.Helper()
	pOut, pErr := newTestPipe(t), newTestPipe(t)
	fedOut := pOut.feed(joinLines(outLines), 4093, 100, 9999)
	fedErr := pErr.feed(joinLines(errLines), 65536, 17)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = Pump(pOut.r, StreamConfig{Files: outFiles}) })
	wg.Go(func() { errs[1] = Pump(pErr.r, StreamConfig{Files: errFiles}) })
	wg.Wait()
	for _, err := range append(errs, <-fedOut, <-fedErr) {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkTwo checks that lines hold every line of both streams ("out …" and "err …") once, whole,
// each stream in its order.
func checkTwo(t *testing.T, lines, outLines, errLines []string) {
	t.Helper()
	next := map[string]int{}
	want := map[string][]string{"out": outLines, "err": errLines}
	for _, l := range lines {
		tag, _, _ := strings.Cut(l, " ")
		ls, ok := want[tag]
		if !ok || next[tag] >= len(ls) || ls[next[tag]] != l {
			t.Fatalf("line %.60q… is not the next line of any stream (lost, repeated or torn)", l)
		}
		next[tag]++
	}
	if next["out"] != len(outLines) || next["err"] != len(errLines) {
		t.Fatalf("got %v lines, want %d and %d", next, len(outLines), len(errLines))
	}
}

func TestPumpNilFile(t *testing.T) {
	fs := NewFiles()
	for _, path := range []string{"", "/dev/null", "NULL"} {
		f, err := fs.Open(path)
		if f != nil || err != nil {
			t.Fatalf("Open(%q) = %v, %v; want nil, nil", path, f, err)
		}
	}
	var f *File
	if err := f.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.Path() != "" {
		t.Fatal("nil File has a path")
	}
	p := newTestPipe(t)
	fed := p.feed(joinLines(testLines(1000, "gone")), 100)
	echo := &lineWriter{t: t}
	if err := Pump(p.r, StreamConfig{Files: []*File{nil, f}, Echo: echo}); err != nil {
		t.Fatal(err)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if echo.buf.Len() == 0 {
		t.Fatal("echo got nothing")
	}
}

func TestPumpWriteErrorKeepsDraining(t *testing.T) {
	fs := NewFiles()
	dir := t.TempDir()
	bad, err := fs.Open(filepath.Join(dir, "bad.log"))
	if err != nil {
		t.Fatal(err)
	}
	bad.Close() // every write to it now fails
	good, err := fs.Open(filepath.Join(dir, "good.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	data := joinLines(testLines(5000, "drain"))
	p := newTestPipe(t)
	fed := p.feed(data, 1000)
	var reported []error
	err = Pump(p.r, StreamConfig{Files: []*File{bad, good}, OnError: func(err error) { reported = append(reported, err) }})
	if !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Pump returned %v, want the write error", err)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if len(reported) != 1 {
		t.Fatalf("OnError called %d times, want once", len(reported))
	}
	b, _ := os.ReadFile(filepath.Join(dir, "good.log"))
	if !bytes.Equal(b, data) {
		t.Fatal("the good file did not get every line")
	}
}

// TestPumpGrowsBusyPipe checks the pipe sizing: a burst enlarges the pipe,
// and a trickle leaves it alone.
func TestPumpGrowsBusyPipe(t *testing.T) {
	if _, ok := pipeSize(newTestPipe(t).r); !ok {
		t.Skip("F_GETPIPE_SZ not supported")
	}
	t.Run("burst", func(t *testing.T) {
		p := newTestPipe(t)
		fed := p.feed(joinLines(testLines(100000, "burst")), 67)
		stats := &pumpStats{}
		pumpFile(t, p, StreamConfig{stats: stats})
		if err := <-fed; err != nil {
			t.Fatal(err)
		}
		if stats.grows.Load() == 0 {
			t.Skip("pipe not enlarged (per-user pipe budget spent?)")
		}
	})
	t.Run("trickle", func(t *testing.T) {
		p := newTestPipe(t)
		done := make(chan error, 1)
		go func() {
			defer p.closeW()
			for i := range 20 {
				if err := writeAll(p.w, fmt.Appendf(nil, "tick %d\n", i)); err != nil {
					done <- err
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			done <- nil
		}()
		stats := &pumpStats{}
		out := pumpFile(t, p, StreamConfig{stats: stats})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if g := stats.grows.Load(); g != 0 {
			t.Errorf("a trickle of lines enlarged the pipe %d times", g)
		}
		if n := bytes.Count(out, []byte{'\n'}); n != 20 {
			t.Errorf("got %d lines, want 20", n)
		}
	})
}

// BenchmarkPump pushes 1M lines of 67 bytes through a pipe from a writer
// goroutine into a file; one op is the whole million.
func BenchmarkPump(b *testing.B) {
	var data bytes.Buffer
	x := strings.Repeat("x", 53)
	for i := range 1_000_000 {
		fmt.Fprintf(&data, "line %07d %s\n", i, x)
	}
	date, err := ParseDateFormat(TimeFormat)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		date *DateFormat
	}{{"plain", nil}, {"date", date}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(data.Len()))
			dir := b.TempDir()
			var reads int64
			for i := 0; b.Loop(); i++ {
				fs := NewFiles()
				path := filepath.Join(dir, fmt.Sprintf("bench-%d.log", i))
				f, err := fs.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				p := newTestPipe(b)
				fed := p.feed(data.Bytes(), 4096)
				stats := &pumpStats{}
				if err := Pump(p.r, StreamConfig{Files: []*File{f}, Date: bc.date, stats: stats}); err != nil {
					b.Fatal(err)
				}
				if err := <-fed; err != nil {
					b.Fatal(err)
				}
				reads += stats.reads.Load()
				f.Close()
				os.Remove(path)
			}
			b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
		})
	}
}

func TestPumpShrinksIdlePipe(t *testing.T) {
	if _, ok := pipeSize(newTestPipe(t).r); !ok {
		t.Skip("F_GETPIPE_SZ not supported")
	}
	defer func(d time.Duration) { idleAfter = d }(idleAfter)
	idleAfter = 200 * time.Millisecond

	p := newTestPipe(t)
	path, f := openOut(t)
	defer f.Close()
	stats := &pumpStats{}
	done := make(chan error, 1)
	go func() { done <- Pump(p.r, StreamConfig{Files: []*File{f}, stats: stats}) }()

	burst := joinLines(testLines(100000, "burst"))
	for b := burst; len(b) > 0; b = b[min(67, len(b)):] {
		if err := writeAll(p.w, b[:min(67, len(b))]); err != nil {
			t.Fatal(err)
		}
	}
	if stats.grows.Load() == 0 {
		t.Skip("pipe not enlarged (per-user pipe budget spent?)")
	}
	// Silence: the pump, blocked waiting for data, must give the pages back.
	deadline := time.Now().Add(5 * time.Second)
	for stats.shrinks.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if stats.shrinks.Load() == 0 {
		t.Fatal("idle pipe not shrunk")
	}
	if size, _ := pipeSize(p.r); size > smallPipe {
		t.Errorf("pipe holds %d bytes of buffer after going idle", size)
	}
	tail := []byte("after the silence\n")
	if err := writeAll(p.w, tail); err != nil {
		t.Fatal(err)
	}
	p.closeW()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !bytes.Equal(b, append(burst, tail...)) {
		t.Fatal("lines lost across the shrink")
	}
}

func TestPumpSameFileTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	fs := NewFiles()
	out, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	combined, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := joinLines(testLines(100, "once"))
	p := newTestPipe(t)
	fed := p.feed(want, 50)
	if err := Pump(p.r, StreamConfig{Files: []*File{out, combined}}); err != nil {
		t.Fatal(err)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	out.Close()
	combined.Close()
	if b, _ := os.ReadFile(path); !bytes.Equal(b, want) {
		t.Fatalf("file has %d bytes, want %d: each line once", len(b), len(want))
	}
}

// log_type json: one object per line with PM2's fields; the message keeps its newline, odd
// bytes are escaped as JSON.stringify escapes them, a long line is split into records, and a
// date format gives the timestamp.
func TestPumpJSONLines(t *testing.T) {
	start := time.Date(2026, 11, 21, 13, 47, 35, 123e6, time.UTC)
	now := func() time.Time { return start }
	p := newTestPipe(t)
	fed := p.feed([]byte("hello\n\"q\" \\ <b> \t\x01é\xff\nlast"))
	out := pumpFile(t, p, StreamConfig{JSON: &JSONFields{Type: "out", ProcessID: 3, AppName: "api"}, Now: now})
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	want := `{"message":"hello\n","timestamp":"2026-11-21T13:47:35.123Z","type":"out","process_id":3,"app_name":"api"}` + "\n" +
		`{"message":"\"q\" \\ <b> \t\u0001é` + "\uFFFD" + `\n","timestamp":"2026-11-21T13:47:35.123Z","type":"out","process_id":3,"app_name":"api"}` + "\n" +
		`{"message":"last\n","timestamp":"2026-11-21T13:47:35.123Z","type":"out","process_id":3,"app_name":"api"}` + "\n"
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%q is not JSON: %v", l, err)
		}
	}

	date, _ := ParseDateFormat("YYYY")
	p = newTestPipe(t)
	fed = p.feed([]byte(strings.Repeat("x", 30) + "\n"))
	out = pumpFile(t, p, StreamConfig{JSON: &JSONFields{Type: "err", AppName: "a"}, Date: date, MaxLine: 20, Now: now})
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"message":"xxxxxxxxxxxxxxxxxxxx [tend: line split]\n","timestamp":"2026","type":"err"`) {
		t.Fatalf("split records: %q", lines)
	}
}

// A line whose end does not come is written as a line of its own after partialWait (an app's
// process.stdout.write('loading...') then silence), and what comes after is a line too.
func TestPumpPartialLineWaitsAWhile(t *testing.T) {
	defer func(d time.Duration) { partialWait = d }(partialWait)
	partialWait = 50 * time.Millisecond
	p := newTestPipe(t)
	path, f := openOut(t)
	done := make(chan error, 1)
	go func() { done <- Pump(p.r, StreamConfig{Files: []*File{f}}) }()
	waitContent := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if b, _ := os.ReadFile(path); string(b) == want {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("the file holds %q, want %q", b, want)
			}
			time.Sleep(5 * time.Millisecond) // polling a file: no event says it grew
		}
	}
	if err := writeAll(p.w, []byte("whole\nloading...")); err != nil {
		t.Fatal(err)
	}
	waitContent("whole\nloading...\n")
	if err := writeAll(p.w, []byte(" done\n")); err != nil {
		t.Fatal(err)
	}
	waitContent("whole\nloading...\n done\n")
	p.closeW()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A quiet app's pump lets go of its buffers once the app has been quiet for releaseAfter (and
// its deadline says when), but never of a partial line's carry.
func TestQuietPumpLetsGoOfItsBuffers(t *testing.T) {
	p := newPump(-1, StreamConfig{})
	p.ensureRoom()
	p.lastData = time.Now()
	if d := p.deadline(); d.IsZero() || d.Sub(p.lastData) != releaseAfter {
		t.Fatalf("deadline %v after data at %v; want releaseAfter (%v) later", d, p.lastData, releaseAfter)
	}
	p.idle()
	if p.buf == nil {
		t.Fatal("let go of the buffer before releaseAfter")
	}
	p.carry = 3
	copy(p.buf, "par")
	p.lastData = time.Now() // the partial line's rest is not due yet
	p.idle()
	if p.buf == nil || p.carry != 3 {
		t.Fatal("let go of a buffer that holds a partial line")
	}
	p.carry = 0
	p.lastData = time.Now().Add(-releaseAfter)
	p.idle()
	if p.buf != nil || p.out != nil {
		t.Fatal("kept its buffers after releaseAfter of quiet")
	}
	if d := p.deadline(); !d.IsZero() {
		t.Fatalf("deadline %v with nothing held; want none", d)
	}
}
