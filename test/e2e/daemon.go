package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// KillDaemon kills the daemon with SIGKILL and waits for the keeper's next one to write its pid:
// up to 10 s plus a start, the keeper's longest back-off once daemons die in a row.
func (h *Harness) KillDaemon() {
	h.T.Helper()
	old := h.PidFile("daemon.pid")
	syscall.Kill(old, syscall.SIGKILL)
	WaitUntil(h.T, 30*time.Second, "a new daemon", func() bool {
		pid := h.PidFile("daemon.pid")
		return pid != old && pid > 0 && PidAlive(pid)
	})
}

// PidFile reads a pid file in $TEND_HOME (daemon.pid, keeper.pid): 0 when there is none.
func (h *Harness) PidFile(name string) int {
	data, _ := os.ReadFile(filepath.Join(h.Home, name))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// SamePids reports whether now lists every instance of before, online with the same pid.
func SamePids(before, now []Proc) bool {
	if len(before) != len(now) {
		return false
	}
	for i := range before {
		if now[i].PmID != before[i].PmID || now[i].Pid != before[i].Pid || now[i].Pm2Env.Status != "online" {
			return false
		}
	}
	return true
}

// DescribePids says each instance's name, id, pid and status, for a failure message.
func DescribePids(ps []Proc) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s/%d=%d(%s)", p.Name, p.PmID, p.Pid, p.Pm2Env.Status))
	}
	return strings.Join(s, " ")
}

// DaemonFds lists a process's open fds and what each points to.
func DaemonFds(pid int) map[string]string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	fds := map[string]string{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed since the listing
		}
		fds[e.Name()] = target
	}
	return fds
}

// SettledFds waits until the daemon's fd count has stopped changing (a connection of the last
// CLI closing, a /proc file of the sampler) and returns its fds.
func SettledFds(t *testing.T, pid int) map[string]string {
	t.Helper()
	var fds map[string]string
	same := 0
	last := -1
	if !Poll(10*time.Second, func() bool {
		fds = DaemonFds(pid)
		if len(fds) == last {
			same++
		} else {
			same, last = 0, len(fds)
		}
		return same >= 5 // 100 ms unchanged, at poll's 20 ms
	}) {
		t.Fatalf("the daemon's fd count did not settle within 10s; last %d", last)
	}
	return fds
}
