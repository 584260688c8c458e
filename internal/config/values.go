package config

import (
	"fmt"
	"runtime"
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

// ParseDuration reads PM2's duration values: a bare number is milliseconds, and "10s", "5m",
// "1h", "250ms" are accepted too, as in min_uptime.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("duration %q is negative", s)
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
	return d, nil
}

// ParseInstances reads -i / instances: a count, "max" or 0 (one per CPU), or -N (CPUs minus N,
// at least 1).
func ParseInstances(s string) (int, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	if t == "max" {
		return CPUCount(), nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return 0, fmt.Errorf("instances must be a whole number, max or -N, got %q", s)
	}
	return InstancesFromInt(n)
}

// InstancesFromInt applies PM2's meaning of 0 and negative counts.
func InstancesFromInt(n int) (int, error) {
	cpus := CPUCount()
	switch {
	case n == 0:
		return cpus, nil
	case n < 0:
		if -n > cpus {
			return 0, fmt.Errorf("instances %d asks for fewer than 0 of this machine's %d CPUs", n, cpus)
		}
		return max(cpus+n, 1), nil
	case n > MaxInstances:
		return 0, fmt.Errorf("instances %d is more than %d", n, MaxInstances)
	}
	return n, nil
}

// CPUCount is the number of CPUs this process may use; cluster mode refines it with the cgroup quota.
func CPUCount() int { return runtime.NumCPU() }
