package config

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ParseSignal accepts PM2's spellings: SIGINT, INT, int, 2.
func ParseSignal(s string) (unix.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %q is out of range", s)
		}
		return unix.Signal(n), nil
	}
	if !strings.HasPrefix(t, "SIG") {
		t = "SIG" + t
	}
	sig := unix.SignalNum(t)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q (try SIGINT, SIGTERM, SIGUSR2)", s)
	}
	return sig, nil
}

// maxDuration bounds every duration a user gives: past it a value is a mistake (and past 292
// years it would not fit in a time.Duration at all).
const maxDuration = 366 * 24 * time.Hour

// ParseDuration reads PM2's duration values: a bare number is milliseconds, and "10s", "5m",
// "1h", "250ms" are accepted too, as in min_uptime. At most a year.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		switch {
		case math.IsNaN(n) || n < 0:
			return 0, fmt.Errorf("duration %q is negative or not a number", s)
		case n > float64(maxDuration/time.Millisecond):
			return 0, fmt.Errorf("duration %q is longer than a year", s)
		}
		return time.Duration(n * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (milliseconds, or a number with ms, s, m or h)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if d > maxDuration {
		return 0, fmt.Errorf("duration %q is longer than a year", s)
	}
	return d, nil
}

// ParseInstances reads -i / instances: a count, "max" or 0 (one per CPU), or -N (CPUs minus N,
// at least 1).
func ParseInstances(s string) (n int, note string, err error) {
	t := strings.TrimSpace(strings.ToLower(s))
	if t == "max" {
		return cpus(), "", nil
	}
	n, used, ok := parseInt(t)
	switch {
	case !ok:
		// PM2 reads -i with parseInt and takes what is not a number (many, "") as max.
		return cpus(), fmt.Sprintf("instances %q is not a number; read as max (%d), as PM2 reads it", s, cpus()), nil
	case used < len(t):
		note = fmt.Sprintf("instances %q read as %d, as PM2 reads it", s, n)
	case n < 0 && -n >= cpus():
		note = fmt.Sprintf("instances %d on %d CPUs: 1 instance, as PM2 starts", n, cpus())
	}
	n, err = InstancesFromInt(n)
	return n, note, err
}

// parseInt reads a number as JavaScript's parseInt does: an optional sign and the digits that
// follow it, the rest ignored ("2.7" is 2); used is how many bytes it read, ok is false when no
// digit comes first.
func parseInt(s string) (n, used int, ok bool) {
	i, neg := 0, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i {
		return 0, 0, false
	}
	n, err := strconv.Atoi(s[i:min(j, i+9)])
	if err != nil || j-i > 9 {
		n = MaxInstances + 1 // refused as too many below
	}
	if neg {
		n = -n
	}
	return n, j, true
}

// InstancesFromInt applies PM2's meaning of 0 and negative counts.
func InstancesFromInt(n int) (int, error) {
	c := cpus()
	switch {
	case n == 0:
		return c, nil
	case n < 0:
		return max(c+n, 1), nil // PM2: -100 on 2 CPUs is 1
	case n > MaxInstances:
		return 0, fmt.Errorf("instances %d is more than %d", n, MaxInstances)
	}
	return n, nil
}

// cpus is CPUCount; tests that need a fixed count replace it.
var cpus = CPUCount

// CPUCount is the number of CPUs this process may use: the CPUs it may run on (affinity), fewer
// when its cgroup has a CPU quota (a container's --cpus), rounded up.
func CPUCount() int {
	n := runtime.NumCPU()
	if q := cgroupCPUs("/proc/self/cgroup", "/sys/fs/cgroup"); q > 0 && q < n {
		n = q
	}
	return n
}

// cgroupCPUs reads the CPU quota of this process's cgroup and of its ancestors (the smallest
// counts), from cgroup v2's cpu.max or v1's cpu.cfs_quota_us; 0 means no quota.
func cgroupCPUs(selfCgroup, root string) int {
	b, err := os.ReadFile(selfCgroup)
	if err != nil {
		return 0
	}
	best := 0
	take := func(quota, period float64) {
		if quota <= 0 || period <= 0 {
			return
		}
		if n := int(math.Ceil(quota / period)); best == 0 || n < best {
			best = max(n, 1)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		v2 := parts[0] == "0" && parts[1] == ""
		v1 := slices.Contains(strings.Split(parts[1], ","), "cpu")
		if !v1 && !v2 {
			continue
		}
		for dir := parts[2]; ; dir = filepath.Dir(dir) {
			if v2 {
				if f, err := os.ReadFile(filepath.Join(root, dir, "cpu.max")); err == nil {
					var q, p string
					if _, err := fmt.Sscan(string(f), &q, &p); err == nil && q != "max" {
						qf, _ := strconv.ParseFloat(q, 64)
						pf, _ := strconv.ParseFloat(p, 64)
						take(qf, pf)
					}
				}
			} else {
				base := filepath.Join(root, "cpu", dir)
				if _, err := os.Stat(base); err != nil {
					base = filepath.Join(root, "cpu,cpuacct", dir)
				}
				q, errq := os.ReadFile(filepath.Join(base, "cpu.cfs_quota_us"))
				p, errp := os.ReadFile(filepath.Join(base, "cpu.cfs_period_us"))
				if errq == nil && errp == nil {
					qf, _ := strconv.ParseFloat(strings.TrimSpace(string(q)), 64)
					pf, _ := strconv.ParseFloat(strings.TrimSpace(string(p)), 64)
					take(qf, pf)
				}
			}
			if dir == "/" || dir == "." {
				break
			}
		}
	}
	return best
}
