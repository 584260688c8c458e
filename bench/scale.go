package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// scaleApps is workload 14's count: 1,000 processes on one daemon (issue 17).
func (b *bench) scaleApps() int {
	if b.o.quick {
		return 200
	}
	return 1000
}

// smallStarter is a peer whose start can run from a small environment: every app keeps the
// CLI's environment (PM2's rule), so a start from a login shell's would hold 1,000 copies of it.
type smallStarter interface {
	StartWith(env []string, apps []App) error
}

// 14. 1,000 sleeps on one daemon, started from a small environment: the time until all are
// online, the list commands, the daemon's memory, threads and goroutines, its CPU once nobody
// has looked for a minute (tree sampling on), and stop all. A peer that cannot get them all
// online in 5 minutes is shown as far as it got.
func (b *bench) scale() error {
	n := b.scaleApps()
	app := fmt.Sprintf("sleep, %d apps", n)
	small := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + os.Getenv("HOME")}
	return b.each(func(p Peer) error {
		s, ok := p.(smallStarter)
		if !ok {
			b.t.note(14, app, "all online", "s", p.Name(), "not run")
			return nil
		}
		start := time.Now()
		if err := s.StartWith(small, sleepApps(n)); err != nil {
			return err
		}
		if !waitUntil(5*time.Minute, 20*time.Millisecond, func() bool { on, _ := p.Online(); return on >= n }) {
			on, _ := p.Online()
			b.t.note(14, app, "all online", "s", p.Name(), fmt.Sprintf("%d of %d after 5 min", on, n))
			return p.DeleteAll()
		}
		b.t.add(14, app, "all online", "s", map[string]float64{p.Name(): time.Since(start).Seconds()})
		runs := 5
		if p.Name() != "tend" {
			runs = 2
		}
		for _, verb := range []string{"jlist", "ls"} {
			d, err := timeCommand(runs, p.Env(), p.List()[0], verb)
			if err != nil {
				return err
			}
			b.t.add(14, app, verb, "ms", map[string]float64{p.Name(): float64(d.Microseconds()) / 1000})
		}
		pids := p.Pids()
		if len(pids) > 0 {
			b.t.add(14, app, "daemon RSS, after the start", "MB", map[string]float64{p.Name(): rssMB(pids)})
			b.t.add(14, app, "daemon threads per 100 processes", "", map[string]float64{p.Name(): float64(threads(pids[0])) * 100 / float64(n)})
			if g, ok := goroutines(p); ok {
				b.t.add(14, app, "daemon goroutines per 100 processes", "", map[string]float64{p.Name(): float64(g) * 100 / float64(n)})
			}
		}
		if !b.o.quick {
			// Nobody looks for 65 s: tend samples the trees every 30 s then (every second while
			// someone looked in the last minute).
			time.Sleep(65 * time.Second)
			c0 := cpuSnapshot(b.managerPids(p))
			time.Sleep(20 * time.Second)
			b.t.add(14, app, "daemon CPU, idle", "%", map[string]float64{p.Name(): cpuSince(c0, b.managerPids(p)) / 20 * 100})
			// The start's garbage is gone by now: this is what the daemon holds to run them.
			if pids := p.Pids(); len(pids) > 0 {
				b.t.add(14, app, "daemon RSS, settled", "MB", map[string]float64{p.Name(): rssMB(pids)})
			}
		}
		began := time.Now()
		if err := p.StopAll(); err != nil {
			return err
		}
		b.t.add(14, app, "stop all", "s", map[string]float64{p.Name(): time.Since(began).Seconds()})
		return p.DeleteAll()
	})
}

// threads is how many threads pid has.
func threads(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	return len(entries)
}

// goroutines reads tend's own count from its metrics (tend_daemon_goroutines).
func goroutines(p Peer) (int, bool) {
	if p.Name() != "tend" {
		return 0, false
	}
	cmd := exec.Command(p.List()[0], "metrics")
	cmd.Env = p.Env()
	out, err := cmd.Output()
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "tend_daemon_goroutines "); ok {
			g, err := strconv.ParseFloat(v, 64)
			return int(g), err == nil
		}
	}
	return 0, false
}
