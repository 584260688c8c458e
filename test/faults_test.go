package test

import (
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A frozen instance (SIGSTOP, as a debugger or a swapped-out process is) does not hold tend:
// stop ends it within kill_timeout (SIGKILL reaches a stopped process), and a reload replaces
// it within drain_timeout and kill_timeout.
func TestFaultFrozenInstance(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("start", appBin, "--name", "frozen", "--kill-timeout", "500", "-s")
	p := h.waitStatus("frozen", "online")
	if err := syscall.Kill(p.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.ok("stop", "frozen", "-s")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stop of a frozen process took %s (kill_timeout 500 ms)", took)
	}
	if pidAlive(p.Pid) {
		t.Errorf("the frozen process %d outlived its stop", p.Pid)
	}

	port := freePort(t)
	h.ok("start", appBin, "--name", "frozen-web", "-i", "2", "--port", strconv.Itoa(port), "--kill-timeout", "500",
		"--drain-timeout", "1000", "--listen-timeout", listenTimeout, "-s", "--", "-serve")
	old := h.waitOnline("frozen-web", 2)
	if err := syscall.Kill(old[0].Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	h.ok("reload", "frozen-web", "-s")
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("reload with a frozen instance took %s (drain 1 s, kill 500 ms; it must not wait for listen_timeout, 60 s)", took)
	}
	for _, q := range h.waitOnline("frozen-web", 2) {
		if q.Pid == old[0].Pid || q.Pid == old[1].Pid {
			t.Errorf("instance %d kept its process %d after the reload", q.PmID, q.Pid)
		}
	}
	if pidAlive(old[0].Pid) {
		t.Errorf("the frozen process %d outlived the reload", old[0].Pid)
	}
}
