package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// procStat is what the harness reads of a process: its parent, CPU ticks and RSS.
type procStat struct {
	pid, ppid int
	ticks     uint64 // utime + stime
	rssPages  int64
}

// parseProcStat reads one /proc/<pid>/stat line; the command name may hold spaces and
// parentheses (PM2's "PM2 v7.0.4: God Daemon (/root/.pm2)"), so fields count from the last ')'.
func parseProcStat(line []byte) (procStat, error) {
	open, end := bytes.IndexByte(line, '('), bytes.LastIndexByte(line, ')')
	if open < 0 || end < 0 || end+2 > len(line) {
		return procStat{}, fmt.Errorf("not a /proc stat line: %.60q", line)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("bad pid in %.60q", line)
	}
	f := strings.Fields(string(line[end+2:])) // f[0] is field 3 (state)
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("short /proc stat line: %.60q", line)
	}
	num := func(field int) uint64 { v, _ := strconv.ParseUint(f[field-3], 10, 64); return v }
	rss, _ := strconv.ParseInt(f[24-3], 10, 64)
	return procStat{pid: pid, ppid: int(num(4)), ticks: num(14) + num(15), rssPages: rss}, nil
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

func allProcs() []procStat {
	entries, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readProcStat(pid); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// cpuSnapshot records the CPU time of each process so far.
func cpuSnapshot(pids []int) map[int]float64 {
	m := make(map[int]float64, len(pids))
	for _, p := range pids {
		if s, err := readProcStat(p); err == nil {
			m[p] = float64(s.ticks) / 100
		}
	}
	return m
}

// cpuSince is the CPU the processes used since snap; a process born since counts whole.
func cpuSince(snap map[int]float64, pids []int) float64 {
	var total float64
	for p, now := range cpuSnapshot(pids) {
		total += now - snap[p]
	}
	return total
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// rssMB is the resident memory of the given processes together.
func rssMB(pids []int) float64 {
	var pages int64
	for _, p := range pids {
		if s, err := readProcStat(p); err == nil {
			pages += s.rssPages
		}
	}
	return float64(pages*int64(os.Getpagesize())) / (1 << 20)
}

// descendants lists root and every process below it.
func descendants(root int) []int {
	children := map[int][]int{}
	for _, s := range allProcs() {
		children[s.ppid] = append(children[s.ppid], s.pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// timeCommand runs argv n times and returns the mean wall time of one run, fork and exec
// included: what a user waits for.
func timeCommand(n int, env []string, argv ...string) (time.Duration, error) {
	start := time.Now()
	for range n {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %v: %.200s", strings.Join(argv, " "), err, out)
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

// waitUntil polls cond every interval until it holds or timeout passes.
func waitUntil(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// fileEndsWith reports whether the file's last bytes are suffix; it reads only the tail, so
// polling a 67 MB log costs the same as polling a small one.
func fileEndsWith(path, suffix string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < int64(len(suffix)) {
		return false
	}
	buf := make([]byte, len(suffix))
	if _, err := f.ReadAt(buf, st.Size()-int64(len(suffix))); err != nil {
		return false
	}
	return string(buf) == suffix
}
