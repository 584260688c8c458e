//go:build linux

package logs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The flood: 1,000,000 lines of 67 bytes ("line 0000042 xxx…x\n") printed by
// node as fast as it can. console.log on a pipe is a synchronous write(2) per
// call on Linux, the worst case for a reader.
const (
	floodLines  = 1_000_000
	floodScript = `const x = 'x'.repeat(53); for (let i = 0; i < 1e6; i++) console.log('line ' + String(i).padStart(7, '0') + ' ' + x)`
	floodLine   = 67
)

type floodResult struct {
	wall    time.Duration
	cpu     time.Duration // of the reader: the test process, or cat
	appCPU  time.Duration // of node
	reads   int64
	grows   int64
	pauses  int64
	outSize int64
}

// TestFlood compares Pump with `node | cat > file`. It is slow and measures
// the machine, so it runs only with TEND_LOG_FLOOD=1 (and means something only
// without -race):
//
//	TEND_LOG_FLOOD=1 go test -run Flood -v ./internal/logs/
//
// TEND_LOG_FLOOD_RUNS sets the number of rounds (default 3).
func TestFlood(t *testing.T) {
	if os.Getenv("TEND_LOG_FLOOD") != "1" {
		t.Skip("set TEND_LOG_FLOOD=1 to run the log flood measurement")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found")
	}
	if _, err := exec.LookPath("cat"); err != nil {
		t.Skip("cat not found")
	}
	runs := 3
	if s := os.Getenv("TEND_LOG_FLOOD_RUNS"); s != "" {
		if runs, err = strconv.Atoi(s); err != nil || runs < 1 {
			t.Fatalf("TEND_LOG_FLOOD_RUNS=%q", s)
		}
	}
	date, err := ParseDateFormat(TimeFormat)
	if err != nil {
		t.Fatal(err)
	}
	modes := []struct {
		name string
		run  func(t *testing.T, path string) floodResult
	}{
		{"cat", func(t *testing.T, path string) floodResult { return floodCat(t, node, path) }},
		{"tend", func(t *testing.T, path string) floodResult { return floodPump(t, node, path, nil) }},
		{"tend+date", func(t *testing.T, path string) floodResult { return floodPump(t, node, path, date) }},
	}
	results := make(map[string][]floodResult)
	// Rounds interleave the modes so that a noisy moment hurts all alike.
	for round := range runs {
		for _, m := range modes {
			path := filepath.Join(t.TempDir(), m.name+".log")
			r := m.run(t, path)
			checkFlood(t, path, m.name == "tend+date")
			results[m.name] = append(results[m.name], r)
			t.Logf("round %d %-9s wall %7.3fs  reader cpu %6.3fs  node cpu %6.3fs  reads %7d  grows %d  pauses %d  bytes %d",
				round+1, m.name, r.wall.Seconds(), r.cpu.Seconds(), r.appCPU.Seconds(), r.reads, r.grows, r.pauses, r.outSize)
		}
	}
	cat := median(results["cat"], func(r floodResult) time.Duration { return r.wall })
	for _, m := range modes {
		rs := results[m.name]
		wall := median(rs, func(r floodResult) time.Duration { return r.wall })
		cpu := median(rs, func(r floodResult) time.Duration { return r.cpu })
		reads := median(rs, func(r floodResult) time.Duration { return time.Duration(r.reads) })
		t.Logf("median %-9s wall %7.3fs (%.2f× cat)  reader cpu %6.3fs  reads %d",
			m.name, wall.Seconds(), wall.Seconds()/cat.Seconds(), cpu.Seconds(), int64(reads))
	}
}

func median(rs []floodResult, f func(floodResult) time.Duration) time.Duration {
	v := make([]time.Duration, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	for i := range v {
		for j := i + 1; j < len(v); j++ {
			if v[j] < v[i] {
				v[i], v[j] = v[j], v[i]
			}
		}
	}
	return v[len(v)/2]
}

func floodPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return p[0], p[1]
}

// startNode starts the flood writing to the pipe write end w and makes sure it
// is gone when the test ends, however it ends.
func startNode(t *testing.T, node string, w int) *exec.Cmd {
	t.Helper()
	wf := os.NewFile(uintptr(w), "flood-w")
	cmd := exec.Command(node, "-e", floodScript)
	cmd.Stdout = wf
	cmd.Stderr = os.Stderr
	err := cmd.Start()
	// The parent's copy of the write end must go, or EOF never comes.
	wf.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func processCPU(cmd *exec.Cmd) time.Duration {
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func selfCPU(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func floodPump(t *testing.T, node, path string, date *DateFormat) floodResult {
	files := NewFiles()
	f, err := files.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w := floodPipe(t)
	defer unix.Close(r)
	stats := &pumpStats{}
	done := make(chan error, 1)

	cpu0 := selfCPU(t)
	start := time.Now()
	go func() { done <- Pump(r, StreamConfig{Files: []*File{f}, Date: date, stats: stats}) }()
	cmd := startNode(t, node, w)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	cpu := selfCPU(t) - cpu0
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return floodResult{wall: wall, cpu: cpu, appCPU: processCPU(cmd), reads: stats.reads.Load(),
		grows: stats.grows.Load(), pauses: stats.pauses.Load(), outSize: st.Size()}
}

func floodCat(t *testing.T, node, path string) floodResult {
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	r, w := floodPipe(t)
	rf := os.NewFile(uintptr(r), "flood-r")

	start := time.Now()
	cat := exec.Command("cat")
	cat.Stdin, cat.Stdout, cat.Stderr = rf, out, os.Stderr
	err = cat.Start()
	rf.Close()
	if err != nil {
		unix.Close(w)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cat.ProcessState == nil {
			cat.Process.Kill()
			cat.Wait()
		}
	})
	cmd := startNode(t, node, w)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := cat.Wait(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return floodResult{wall: wall, cpu: processCPU(cat), appCPU: processCPU(cmd), outSize: st.Size()}
}

// checkFlood verifies that every line is in the file, once, in order.
func checkFlood(t *testing.T, path string, dated bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	x := bytes.Repeat([]byte{'x'}, 53)
	want := make([]byte, 0, floodLine)
	i := 0
	for sc.Scan() {
		line := sc.Bytes()
		if dated {
			j := bytes.Index(line, []byte(": "))
			if j != len("2026-11-21T13:47:35") {
				t.Fatalf("line %d: bad date prefix: %q", i, line)
			}
			line = line[j+2:]
		}
		want = fmt.Appendf(want[:0], "line %07d %s", i, x)
		if !bytes.Equal(line, want) {
			t.Fatalf("line %d: got %q, want %q", i, line, want)
		}
		i++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != floodLines {
		t.Fatalf("got %d lines, want %d", i, floodLines)
	}
}
