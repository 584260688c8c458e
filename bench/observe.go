package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// 11. 200 processes watched: one list every 5 s (a dashboard, a scrape) for 20 s, which keeps
// tend sampling every second; the manager's CPU over that time, and the list, `ls` and /metrics
// round trips with 200 processes.
func (b *bench) watched() error {
	app := fmt.Sprintf("sleep, %d apps", b.manyApps())
	span := 20 * time.Second
	if b.o.quick {
		span = 10 * time.Second
	}
	return b.each(func(p Peer) error {
		if _, err := b.startAndWait(p, sleepApps(b.manyApps())); err != nil {
			return err
		}
		if _, err := run(p.Env(), p.List()...); err != nil { // a look: tend samples every second from now
			return err
		}
		time.Sleep(3 * time.Second)
		c0 := cpuSnapshot(b.managerPids(p))
		for end := time.Now().Add(span); time.Now().Before(end); time.Sleep(5 * time.Second) {
			if _, err := run(p.Env(), p.List()...); err != nil {
				return err
			}
		}
		pct := cpuSince(c0, b.managerPids(p)) / span.Seconds() * 100
		b.t.add(11, app, fmt.Sprintf("daemon CPU, one list every 5 s over %s", span), "%", map[string]float64{p.Name(): pct})
		n := 20
		if p.Name() != "tend" {
			n = 5
		}
		d, err := timeCommand(n, p.Env(), p.List()...)
		if err != nil {
			return err
		}
		b.t.add(11, app, "list round trip (jlist / supervisorctl status)", "ms", map[string]float64{p.Name(): d.Seconds() * 1000})
		if p.Name() == "tend" {
			bin := p.List()[0]
			if d, err = timeCommand(n, p.Env(), bin, "ls", "--no-color"); err != nil {
				return err
			}
			b.t.add(11, app, "tend ls", "ms", map[string]float64{p.Name(): d.Seconds() * 1000})
			ms, err := scrapeTime(p, bin, n)
			if err != nil {
				return err
			}
			b.t.add(11, app, "/metrics scrape", "ms", map[string]float64{p.Name(): ms})
		}
		return p.DeleteAll()
	})
}

// scrapeTime has tend's daemon serve /metrics on a free port and returns the median time of n
// scrapes, in ms.
func scrapeTime(p Peer, bin string, n int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := run(p.Env(), bin, "set", "metrics_listen", addr); err != nil {
		return 0, err
	}
	defer run(p.Env(), bin, "unset", "metrics_listen")
	var times []float64
	for range n {
		start := time.Now()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return 0, fmt.Errorf("scrape: status %d, %v", resp.StatusCode, err)
		}
		times = append(times, float64(time.Since(start).Microseconds())/1000)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// 12. Memory-limit restart: an app passes max_memory_restart (200 MB) once; the figure is the
// time from its crossing (as it saw its own RSS) to its replacement's start.
func (b *bench) memoryLimit() error {
	const label = "app passing max_memory_restart 200M"
	return b.each(func(p Peer) error {
		if !p.Can("memlimit") {
			b.t.note(12, label, "crossing to restart", "s", p.Name(), "no memory limit")
			return nil
		}
		mark := filepath.Join(b.work, "grow-"+p.Name()+".mark")
		os.Remove(mark)
		app := App{Name: "grow", Script: b.app("grow.js"), Node: true, Restart: true, MaxMemory: "200M",
			Env: map[string]string{"MARK": mark, "LIMIT_MB": "200"}}
		if _, err := b.startAndWait(p, []App{app}); err != nil {
			return err
		}
		var cross, restart int64
		ok := waitUntil(90*time.Second, 50*time.Millisecond, func() bool {
			cross, restart = markTimes(mark)
			return restart > 0
		})
		if !ok {
			return fmt.Errorf("no restart within 90 s of the start (crossed: %v)", cross > 0)
		}
		b.t.add(12, label, "crossing to restart", "s", map[string]float64{p.Name(): float64(restart-cross) / 1000})
		return p.DeleteAll()
	})
}

// markTimes reads grow.js's mark file: when it crossed the limit, and when the next process
// started (0: not yet), in unix ms.
func markTimes(path string) (cross, restart int64) {
	b, _ := os.ReadFile(path)
	starts := 0
	for _, l := range strings.Split(string(b), "\n") {
		kind, v, _ := strings.Cut(l, " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch kind {
		case "start":
			starts++
			if starts == 2 {
				restart = n
			}
		case "cross":
			cross = n
		}
	}
	if cross == 0 {
		restart = 0
	}
	return cross, restart
}

// 13. monit with 50 apps: the manager's CPU over 20 s while its terminal dashboard shows them
// (PM2's `pm2 monit`, tend's `tend monit`, each in a 120×40 tmux terminal), and the
// dashboard's own CPU.
func (b *bench) monit() error {
	const apps = 50
	label := fmt.Sprintf("sleep, %d apps, monit open", apps)
	span := 20 * time.Second
	if b.o.quick {
		span = 10 * time.Second
	}
	return b.each(func(p Peer) error {
		cp, ok := p.(interface{ MonitCommand() []string })
		if !ok {
			b.t.note(13, label, "daemon CPU over "+span.String(), "%", p.Name(), "no monit")
			b.t.note(13, label, "monit's own CPU", "%", p.Name(), "no monit")
			return nil
		}
		if _, err := exec.LookPath("tmux"); err != nil {
			return fmt.Errorf("workload 13 needs tmux")
		}
		if _, err := b.startAndWait(p, sleepApps(apps)); err != nil {
			return err
		}
		server := "tend-bench-monit"
		tmux := func(args ...string) (string, error) {
			return run(p.Env(), append([]string{"tmux", "-L", server}, args...)...)
		}
		defer tmux("kill-server")
		args := []string{"new-session", "-d", "-x", "120", "-y", "40", "-e", "TERM=xterm-256color"}
		for _, kv := range p.Env() {
			if strings.HasPrefix(kv, "TEND_HOME=") || strings.HasPrefix(kv, "PM2_HOME=") {
				args = append(args, "-e", kv)
			}
		}
		if _, err := tmux(append(args, cp.MonitCommand()...)...); err != nil {
			return err
		}
		out, err := tmux("display-message", "-p", "#{pane_pid}")
		if err != nil {
			return err
		}
		pane, _ := strconv.Atoi(strings.TrimSpace(out))
		time.Sleep(3 * time.Second) // its start-up is not what is measured
		c0, m0 := cpuSnapshot(b.managerPids(p)), cpuSnapshot(descendants(pane))
		time.Sleep(span)
		daemon := cpuSince(c0, b.managerPids(p)) / span.Seconds() * 100
		mon := cpuSince(m0, descendants(pane)) / span.Seconds() * 100
		b.t.add(13, label, "daemon CPU over "+span.String(), "%", map[string]float64{p.Name(): daemon})
		b.t.add(13, label, "monit's own CPU", "%", map[string]float64{p.Name(): mon})
		tmux("kill-server")
		return p.DeleteAll()
	})
}

// MonitCommand is the peer's terminal dashboard.
func (p *cliPeer) MonitCommand() []string { return []string{p.bin, "monit"} }
