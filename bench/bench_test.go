package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The harness is not run by CI; these tests keep it building and its readers honest on real
// output.
func TestParseProcStat(t *testing.T) {
	for file, want := range map[string]struct{ pid, ppid int }{
		"pm2-god.stat": {32722, 1}, // PM2's title has spaces and a colon: fields count from ')'
	} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		s, err := parseProcStat(b)
		if err != nil || s.pid != want.pid || s.ppid != want.ppid || s.ticks != 19 || s.rssPages != 14459 {
			t.Fatalf("%s: %+v %v", file, s, err)
		}
	}
	if _, err := parseProcStat([]byte("garbage")); err == nil {
		t.Fatal("garbage should not parse")
	}
	self, err := readProcStat(os.Getpid())
	if err != nil || self.pid != os.Getpid() || self.rssPages <= 0 {
		t.Fatalf("own stat: %+v %v", self, err)
	}
}

func TestCheckFlood(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, lines []string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		return p
	}
	const n = 1000
	line := func(i int, prefix string) string {
		return fmt.Sprintf("%sline %07d %s", prefix, i, strings.Repeat("x", 53))
	}
	var whole, stamped, torn []string
	for i := range n {
		whole = append(whole, line(i, ""))
		stamped = append(stamped, line(i, "2026-11-21T10:00:00: "))
	}
	torn = append([]string{}, whole...)
	torn[10] = "line 00000"
	torn[11] = "2026-11-21T10:00:00: 10 xxx" // PM2 stamps the rest of a line cut between two reads
	torn = append(torn, "END")
	for name, c := range map[string]struct {
		lines []string
		bad   int
	}{
		"whole":   {append(whole, "END"), 0},
		"stamped": {append(stamped, "2026-11-21T10:00:00: END"), 0},
		"missing": {append(append([]string{}, whole[:500]...), whole[501:]...), 1},
		"short":   {whole[:n-3], 3},
	} {
		got, err := checkFlood(n, write(name, c.lines))
		if err != nil || got != c.bad {
			t.Errorf("%s: %d bad lines, want %d (%v)", name, got, c.bad, err)
		}
	}
	if got, _ := checkFlood(n, write("torn", torn)); got == 0 {
		t.Error("a torn line must count")
	}
}

func TestTable(t *testing.T) {
	tb := &table{cols: []string{"tend", "PM2 7.0.4", Direct}}
	tb.add(2, "sleep, 200 apps", "stop all", "s", map[string]float64{"tend": 0.05, "PM2 7.0.4": 12.5})
	tb.add(2, "sleep, 200 apps", "stop all", "s", map[string]float64{"tend": 0.07, "PM2 7.0.4": 12.1})
	tb.add(2, "sleep, 200 apps", "stop all", "s", map[string]float64{"tend": 0.06, "PM2 7.0.4": 12.3})
	tb.note(4, "hello.js", "requests/s", "", "tend", "no shared port")
	var out bytes.Buffer
	tb.render(&out)
	for _, want := range []string{"| 2 | sleep, 200 apps | stop all | 0.06 s | 12.3 s (0.0049×) |  |", "| 4 | hello.js | requests/s | no shared port |  |  |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCPUSince(t *testing.T) {
	self := []int{os.Getpid()}
	snap := cpuSnapshot(self)
	for i := 0; i < 3e7; i++ { // burn a little CPU
		_ = i * i
	}
	if got := cpuSince(snap, self); got < 0 {
		t.Fatalf("cpuSince = %v", got)
	}
	if got := cpuSince(map[int]float64{}, self); got <= 0 {
		t.Fatalf("a process born since the snapshot counts whole: %v", got)
	}
	if !strings.Contains(cmdline(os.Getpid()), "bench") {
		t.Fatalf("cmdline of the test: %q", cmdline(os.Getpid()))
	}
}

// tend's ratio to direct is the median of per-run ratios, unless direct varied too much to judge.
func TestDirectRatio(t *testing.T) {
	for _, tt := range []struct {
		tend, direct []float64
		want         string
	}{
		{[]float64{95, 100, 90, 97, 99}, []float64{100, 102, 98, 101, 100}, "0.960×"},
		{[]float64{95, 100, 90, 97, 99}, []float64{100, 120, 98, 101, 100}, "too noisy to judge: direct varied 22 %"},
	} {
		if got := directRatio(tt.tend, tt.direct); got != tt.want {
			t.Errorf("directRatio(%v, %v) = %q, want %q", tt.tend, tt.direct, got, tt.want)
		}
	}
	tb := &table{cols: []string{"tend", Direct}}
	for i := range 5 {
		tb.add(4, "hello.js", "requests/s", "req/s", map[string]float64{"tend": 97 + float64(i), Direct: 100 + float64(i)})
	}
	var out bytes.Buffer
	tb.render(&out)
	if want := "| 4 | hello.js | requests/s | 99 req/s | 102 req/s (0.971×) |"; !strings.Contains(out.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, out.String())
	}
}
