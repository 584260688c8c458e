package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tend-sh/tend/internal/httpload"
)

// Workload 8: kill -9 of the manager's daemon while a cluster app serves a load and a fork-mode
// app logs. tend's keeper holds the apps' pipes, IPC channels and sockets and starts a new daemon
// that adopts them; PM2's apps hang on its God daemon.

const (
	surviveLabel = "hello.js, 2 instances + ticker.js; kill -9 of the daemon"
	surviveApps  = 3               // the cluster's 2 instances and the ticker
	surviveAfter = 5 * time.Second // watched after the kill, with no CLI call to the manager
)

type figure struct{ name, unit string }

var (
	figFailed  = figure{"failed requests, load until 5 s after the kill", "requests"}
	figRefused = figure{"refused connections, load until 5 s after the kill", "connections"}
	figServed  = figure{"requests served in the 5 s after the kill", "requests"}
	figBack    = figure{"a new daemon's pid in the pid file after", "ms"}
	figLost    = figure{"ticker lines lost", "lines"}
	figDup     = figure{"ticker lines duplicated", "lines"}
	figAlive   = figure{"original app pids alive 5 s after the kill", ""}
	figVmRSS   = figure{"keeper / daemon VmRSS, idle with the 3 apps", ""}
	figAnon    = figure{"keeper / daemon RssAnon, idle with the 3 apps", ""}
	surviveFig = []figure{figFailed, figRefused, figServed, figBack, figLost, figDup, figAlive, figVmRSS, figAnon}
)

// survival is one turn's figures.
type survival struct {
	failed, refused, served int64
	back                    time.Duration // 0: no new daemon within surviveAfter
	lost, dup               int
	alive                   int
	keeper, daemon          memRSS // idle with the apps, before the load
}

// memRSS is a process's resident memory in MB, all of it and its anonymous part (what the process
// itself allocated, without the binary's and libraries' file-backed pages).
type memRSS struct{ vm, anon float64 }

// 8. kill -9 of the daemon under load: requests failed or refused, ticker lines lost or doubled,
// apps alive after 5 s, and the memory that keeps them alive.
func (b *bench) survive() error {
	for _, f := range surviveFig {
		b.t.row(8, surviveLabel, f.name, f.unit) // the rows in this order, whatever comes first
		b.t.note(8, surviveLabel, f.name, f.unit, Direct, "no manager")
	}
	runs := map[string][]survival{}
	err := b.each(func(p Peer) error {
		if _, ok := p.(clusterer); !ok {
			for _, f := range surviveFig {
				b.t.note(8, surviveLabel, f.name, f.unit, p.Name(), "no shared port")
			}
			return nil
		}
		s, err := b.surviveTurn(p)
		if err != nil {
			return err
		}
		runs[p.Name()] = append(runs[p.Name()], s)
		b.t.add(8, surviveLabel, figFailed.name, figFailed.unit, map[string]float64{p.Name(): float64(s.failed)})
		b.t.add(8, surviveLabel, figRefused.name, figRefused.unit, map[string]float64{p.Name(): float64(s.refused)})
		b.t.add(8, surviveLabel, figServed.name, figServed.unit, map[string]float64{p.Name(): float64(s.served)})
		if s.back > 0 {
			b.t.add(8, surviveLabel, figBack.name, figBack.unit, map[string]float64{p.Name(): s.back.Seconds() * 1000})
		} else {
			b.t.note(8, surviveLabel, figBack.name, figBack.unit, p.Name(), fmt.Sprintf("none within %g s", surviveAfter.Seconds()))
		}
		b.t.add(8, surviveLabel, figLost.name, figLost.unit, map[string]float64{p.Name(): float64(s.lost)})
		b.t.add(8, surviveLabel, figDup.name, figDup.unit, map[string]float64{p.Name(): float64(s.dup)})
		return nil
	})
	b.surviveNotes(runs)
	return err
}

// surviveNotes writes the rows that are text, not one number with a unit: medians over the runs,
// and for the apps alive the worst run too, when it differs.
func (b *bench) surviveNotes(runs map[string][]survival) {
	for name, ss := range runs {
		pick := func(f func(survival) float64) float64 {
			var xs []float64
			for _, s := range ss {
				xs = append(xs, f(s))
			}
			return median(xs)
		}
		alive := pick(func(s survival) float64 { return float64(s.alive) })
		note := fmt.Sprintf("%g of %d", alive, surviveApps)
		if worst := slices.MinFunc(ss, func(x, y survival) int { return x.alive - y.alive }).alive; float64(worst) < alive {
			note += fmt.Sprintf(" (worst run: %d)", worst)
		}
		b.t.note(8, surviveLabel, figAlive.name, "", name, note)
		pair := func(keeper, daemon float64) string {
			k := "no keeper"
			if keeper > 0 {
				k = format(keeper, "MB")
			}
			return k + " / " + format(daemon, "MB")
		}
		b.t.note(8, surviveLabel, figVmRSS.name, "", name,
			pair(pick(func(s survival) float64 { return s.keeper.vm }), pick(func(s survival) float64 { return s.daemon.vm })))
		b.t.note(8, surviveLabel, figAnon.name, "", name,
			pair(pick(func(s survival) float64 { return s.keeper.anon }), pick(func(s survival) float64 { return s.daemon.anon })))
	}
}

// surviveTurn starts the apps, measures the idle memory, loads the cluster, kills the daemon and
// watches for surviveAfter; then it stops everything, checks nothing is left, and starts the
// manager again, fresh, as the other workloads expect it.
func (b *bench) surviveTurn(p Peer) (s survival, err error) {
	// A fresh manager to begin with, too: the memory rows then read the same in every run,
	// whatever the workloads before left in the daemon's heap.
	if err := b.restartClean(p, nil); err != nil {
		return s, err
	}
	var apps []procID
	defer func() {
		if e := b.restartClean(p, apps); e != nil && err == nil {
			err = e
		}
	}()
	tick := filepath.Join(b.work, "ticker.last")
	log := p.LogPath("ticker")
	os.Remove(tick)
	os.Remove(log)
	addr, err := b.startSurviveApps(p, tick)
	if err != nil {
		return s, err
	}
	if apps, err = appProcs(p.(clusterer), "bench8", "ticker"); err != nil {
		return s, err
	}
	time.Sleep(time.Second) // the start's bustle over: idle, as the row says
	s.keeper, s.daemon = b.managerMemory(p)

	ctx, cancel := context.WithCancel(b.ctx)
	res, wait := httpload.Loop(ctx, addr, 32)
	defer func() { cancel(); wait() }()
	if !waitUntil(15*time.Second, 10*time.Millisecond, func() bool { return res.OK.Load() >= 1000 }) {
		return s, fmt.Errorf("the load was not served: %d served, %d failed, %d refused",
			res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	}
	daemon, ok := b.daemonProc(p)
	if !ok {
		return s, fmt.Errorf("no daemon to kill")
	}
	servedBefore := res.OK.Load()
	if err := syscall.Kill(daemon.pid, syscall.SIGKILL); err != nil {
		return s, err
	}
	s.back = b.watchDaemon(p, daemon)
	// Counted before anything else: a CLI call could start a new PM2 daemon.
	for _, a := range apps {
		if a.alive() {
			s.alive++
		}
	}
	s.served = res.OK.Load() - servedBefore
	cancel()
	wait()
	s.failed, s.refused = res.Failed.Load(), res.Refused.Load()
	s.lost, s.dup, err = tickerLoss(log, tick)
	return s, err
}

// startSurviveApps starts the cluster app on a free port and the ticker, and waits until the
// cluster serves, all 3 are online and the ticker has logged.
func (b *bench) startSurviveApps(p Peer, tick string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := p.(clusterer).StartCluster("bench8", b.app("hello.js"), 2, port); err != nil {
		return "", err
	}
	ticker := App{Name: "ticker", Script: b.app("ticker.js"), Node: true, Env: map[string]string{"TICK_FILE": tick}}
	if err := p.Start([]App{ticker}); err != nil {
		return "", err
	}
	if !waitServing(addr, 30*time.Second) {
		return "", fmt.Errorf("hello.js never served on %s", addr)
	}
	if !waitUntil(30*time.Second, 10*time.Millisecond, func() bool { n, _ := p.Online(); return n >= surviveApps }) {
		return "", fmt.Errorf("fewer than %d apps online after 30s", surviveApps)
	}
	if !waitUntil(10*time.Second, 10*time.Millisecond, func() bool { n, ok := readTick(tick); return ok && n >= 5 }) {
		return "", fmt.Errorf("ticker.js never ticked")
	}
	return addr, nil
}

// appProcs identifies the apps' processes by pid and start time, so that "alive" later means the
// same process, not a pid reused.
func appProcs(cl clusterer, names ...string) ([]procID, error) {
	var out []procID
	for _, name := range names {
		pids, err := cl.InstancePids(name)
		if err != nil {
			return nil, err
		}
		for _, pid := range pids {
			if id, ok := identify(pid); ok {
				out = append(out, id)
			}
		}
	}
	if len(out) != surviveApps {
		return nil, fmt.Errorf("%d app processes found, want %d", len(out), surviveApps)
	}
	return out, nil
}

// daemonProc is the process the peer's pid file names (tend's daemon.pid, PM2's pm2.pid, which
// its God daemon writes), if it is alive and of this run of the harness: a stale pid file could
// name a pid reused by someone else's process.
func (b *bench) daemonProc(p Peer) (procID, bool) {
	for _, pid := range p.Pids() {
		if id, ok := identify(pid); ok && strings.Contains(cmdline(pid), b.work) {
			return id, true
		}
	}
	return procID{}, false
}

// watchDaemon waits surviveAfter from the kill of old and returns when the pid file first named a
// new live daemon (0 if never). It only reads files: no CLI call, which would start a PM2
// daemon.
func (b *bench) watchDaemon(p Peer, old procID) time.Duration {
	killed := time.Now()
	var back time.Duration
	for time.Since(killed) < surviveAfter {
		if back == 0 {
			if id, ok := b.daemonProc(p); ok && id != old {
				back = time.Since(killed)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return back
}

// managerMemory reads the keeper's (tend only) and the daemon's memory.
func (b *bench) managerMemory(p Peer) (keeper, daemon memRSS) {
	if t, ok := p.(*tendPeer); ok {
		for _, pid := range pidFromFile(filepath.Join(t.home, "keeper.pid")) {
			keeper = readMemRSS(pid)
		}
	}
	if id, ok := b.daemonProc(p); ok {
		daemon = readMemRSS(id.pid)
	}
	return keeper, daemon
}

// readMemRSS reads VmRSS and RssAnon from /proc/<pid>/status (kB there, MB here).
func readMemRSS(pid int) memRSS {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memRSS{}
	}
	var m memRSS
	for _, line := range strings.Split(string(data), "\n") {
		key, val, _ := strings.Cut(line, ":")
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			m.vm = kb / 1024
		case "RssAnon":
			m.anon = kb / 1024
		}
	}
	return m
}

// procID is a process known by its pid and start time (in clock ticks since boot).
type procID struct {
	pid   int
	start uint64
}

// identify reads a live process's start time; a zombie is not alive: it runs no more.
func identify(pid int) (procID, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procID{}, false
	}
	end := strings.LastIndexByte(string(b), ')') // the command name may hold spaces and ')'
	if end < 0 || end+2 > len(b) {
		return procID{}, false
	}
	f := strings.Fields(string(b[end+2:])) // f[0] is field 3 (state), f[19] field 22 (starttime)
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return procID{}, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procID{}, false
	}
	return procID{pid: pid, start: start}, true
}

// alive reports whether the same process still runs.
func (id procID) alive() bool {
	now, ok := identify(id.pid)
	return ok && now == id
}

// readTick reads the ticker's TICK_FILE: the number of the last line it wrote.
func readTick(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

// tickerLoss reads the ticker's log once it has caught up with the app's last tick (or 2 s have
// passed: a reader that died writes nothing more) and counts the lines lost and duplicated.
func tickerLoss(log, tick string) (lost, dup int, err error) {
	last, ok := readTick(tick)
	if !ok {
		return 0, 0, fmt.Errorf("ticker.js left no TICK_FILE")
	}
	var data []byte
	waitUntil(2*time.Second, 10*time.Millisecond, func() bool {
		data, _ = os.ReadFile(log)
		_, _, top := countTicks(data, last)
		return top >= last
	})
	lost, dup, _ = countTicks(data, last)
	return lost, dup, nil
}

// countTicks checks a ticker log against the app's last tick: lost is every number from the
// log's first line up to last that is not in it (a torn line's number is missing too), dup the
// lines whose number is there already; top is the highest number in the log.
func countTicks(data []byte, last int) (lost, dup, top int) {
	seen := map[int]bool{}
	first, top := -1, -1
	for _, line := range strings.Split(string(data), "\n") {
		num, ok := strings.CutPrefix(line, "tick ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			continue
		}
		if seen[n] {
			dup++
		}
		seen[n] = true
		if first < 0 {
			first = n
		}
		top = max(top, n)
	}
	for n := max(first, 0); n <= last; n++ {
		if !seen[n] {
			lost++
		}
	}
	return lost, dup, top
}

// restartClean stops the manager (tend kill, pm2 kill) and makes sure nothing of the turn is left:
// the original apps (a PM2 app orphaned by its daemon's death would be), the keeper, the daemons
// and everything below them. What is left is named on stderr and killed by its pid. Then the
// manager starts again, fresh, as the other workloads expect it.
func (b *bench) restartClean(p Peer, apps []procID) error {
	procs := append(slices.Clone(apps), b.managerProcs(p)...)
	p.Close()
	procs = append(procs, b.managerProcs(p)...) // a daemon that the kill command started itself
	left := waitGone(procs, 10*time.Second)
	if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "\n  %s: still running after its kill command, killed now: %v\n", p.Name(), pidsOf(left))
		for _, id := range left {
			syscall.Kill(id.pid, syscall.SIGKILL)
		}
		if left = waitGone(left, 5*time.Second); len(left) > 0 {
			return fmt.Errorf("still running after SIGKILL: %v", pidsOf(left))
		}
	}
	return p.Setup()
}

// managerProcs are the live keeper (tend) and daemon of this harness run and every process below
// them.
func (b *bench) managerProcs(p Peer) []procID {
	var roots []int
	if t, ok := p.(*tendPeer); ok {
		roots = pidFromFile(filepath.Join(t.home, "keeper.pid"))
	}
	if id, ok := b.daemonProc(p); ok {
		roots = append(roots, id.pid)
	}
	var out []procID
	for _, root := range roots {
		if !strings.Contains(cmdline(root), b.work) {
			continue // a stale pid file: not ours
		}
		for _, pid := range descendants(root) {
			if id, ok := identify(pid); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

// waitGone waits until none of procs runs, and returns those that still do after timeout.
func waitGone(procs []procID, timeout time.Duration) []procID {
	var left []procID
	waitUntil(timeout, 20*time.Millisecond, func() bool {
		left = left[:0]
		for _, id := range procs {
			if id.alive() {
				left = append(left, id)
			}
		}
		return len(left) == 0
	})
	return left
}

func pidsOf(procs []procID) []int {
	var out []int
	for _, id := range procs {
		out = append(out, id.pid)
	}
	return out
}
