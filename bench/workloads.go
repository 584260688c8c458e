package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type bench struct {
	directBin string
	o         options
	ctx       context.Context
	work      string
	root      string
	peers     []Peer
	t         *table
	rounds    map[int]int // per cluster workload: how many runs so far, to rotate who goes first
}

type workload struct {
	n    int
	name string
	run  func(*bench) error
}

var workloads = []workload{
	{1, "CLI round trip and daemon memory", (*bench).cli},
	{2, "200 processes from one config", (*bench).many},
	{3, "log flood", (*bench).flood},
	{4, "cluster HTTP", (*bench).clusterHTTP},
	{5, "rolling reloads under load", (*bench).reloads},
	{6, "kill -9 of an instance under load", (*bench).kills},
	{7, "idle daemon CPU with 200 processes", (*bench).idle},
	{8, "daemon killed under load", (*bench).survive},
	{9, "crash storm", (*bench).storm},
	{10, "line latency", (*bench).latency},
	{11, "200 processes watched", (*bench).watched},
	{12, "memory-limit restart", (*bench).memoryLimit},
	{13, "monit with 50 apps", (*bench).monit},
	{14, "1,000 processes", (*bench).scale},
}

func (b *bench) app(name string) string { return filepath.Join(b.root, "bench", "apps", name) }

// managerPids are the manager's own processes: its daemon and every live descendant that is not
// one of the workload's apps (a helper process counts; the apps' CPU is theirs).
func (b *bench) managerPids(p Peer) []int {
	apps := b.app("")
	var out []int
	for _, root := range p.Pids() {
		for _, pid := range descendants(root) {
			cmd := cmdline(pid)
			if pid == root || !strings.Contains(cmd, apps) && !strings.HasPrefix(cmd, "/bin/sleep ") {
				out = append(out, pid)
			}
		}
	}
	return out
}

func sleepApps(n int) []App {
	apps := make([]App, n)
	for i := range apps {
		apps[i] = App{Name: fmt.Sprintf("sleep%d", i), Script: "/bin/sleep", Args: []string{"3600"}}
	}
	return apps
}

// each runs f for every peer, runs times, interleaved (A B C A B C …) so that drift of the
// machine hits every peer alike.
func (b *bench) each(f func(Peer) error) error {
	for range b.o.runs {
		for _, p := range b.peers {
			if b.ctx.Err() != nil {
				return b.ctx.Err()
			}
			if err := f(p); err != nil {
				return fmt.Errorf("%s: %w", p.Name(), err)
			}
		}
	}
	return nil
}

func (b *bench) startAndWait(p Peer, apps []App) (time.Duration, error) {
	start := time.Now()
	if err := p.Start(apps); err != nil {
		return 0, err
	}
	if !waitUntil(60*time.Second, 10*time.Millisecond, func() bool { n, _ := p.Online(); return n >= len(apps) }) {
		n, _ := p.Online()
		return 0, fmt.Errorf("%d of %d apps online after 60s", n, len(apps))
	}
	return time.Since(start), nil
}

// 1. The list command's round trip with 20 apps, and the daemon's memory with them.
func (b *bench) cli() error {
	const app = "sleep, 20 apps"
	return b.each(func(p Peer) error {
		if _, err := b.startAndWait(p, sleepApps(20)); err != nil {
			return err
		}
		time.Sleep(2 * time.Second) // let samplers and caches settle
		n := 100
		if p.Name() != "tend" {
			n = 10 // PM2's and supervisorctl's CLIs take 100–300 ms each
		}
		if b.o.quick {
			n = max(n/5, 3)
		}
		d, err := timeCommand(n, p.Env(), p.List()...)
		if err != nil {
			return err
		}
		b.t.add(1, app, "list round trip (jlist / supervisorctl status)", "ms", map[string]float64{p.Name(): d.Seconds() * 1000})
		b.t.add(1, app, "daemon RSS", "MB", map[string]float64{p.Name(): rssMB(p.Pids())})
		return p.DeleteAll()
	})
}

// manyApps is the "200 processes" of workloads 2 and 7; quick mode uses 50, since PM2 takes
// a quarter of a minute to stop 200.
func (b *bench) manyApps() int {
	if b.o.quick {
		return 50
	}
	return 200
}

// 2. 200 processes from one config: time until all are online, then the time of stop all.
func (b *bench) many() error {
	app := fmt.Sprintf("sleep, %d apps", b.manyApps())
	return b.each(func(p Peer) error {
		on, err := b.startAndWait(p, sleepApps(b.manyApps()))
		if err != nil {
			return err
		}
		start := time.Now()
		if err := p.StopAll(); err != nil {
			return err
		}
		off := time.Since(start)
		b.t.add(2, app, "all online", "s", map[string]float64{p.Name(): on.Seconds()})
		b.t.add(2, app, "stop all", "s", map[string]float64{p.Name(): off.Seconds()})
		return p.DeleteAll()
	})
}

// 3. Log flood: 1,000,000 lines of 67 bytes. Wall time runs until the last line is in the file,
// seen the same way for every contender; CPU is the manager's (for direct, cat's).
func (b *bench) flood() error {
	type variant struct {
		label    string
		perLine  bool
		time     bool
		fullOnly bool
		rotate   int64
	}
	variants := []variant{
		{"flood.js, 1000 lines a write", false, false, false, 0},
		{"flood.js, 1000 lines a write, timestamps", false, true, false, 0},
		{"flood.js, 1000 lines a write, rotation every 1 MB", false, false, false, 1 << 20},
		{"flood.js, console.log per line", true, false, true, 0},
		{"flood.js, console.log per line, timestamps", true, true, true, 0},
		{"flood.js, console.log per line, rotation every 1 MB", true, false, true, 1 << 20},
	}
	for _, v := range variants {
		if v.fullOnly && b.o.quick {
			continue
		}
		env := append(os.Environ(), "FLOOD_LINES=0")
		if v.perLine {
			env = append(os.Environ(), "FLOOD_LINES=1")
		}
		for range b.o.runs {
			if !v.time && v.rotate == 0 {
				wall, cpu, err := b.floodDirect(env)
				if err != nil {
					return fmt.Errorf("direct: %w", err)
				}
				b.t.add(3, v.label, "wall time to the last line on disk", "s", map[string]float64{Direct: wall.Seconds()})
				b.t.add(3, v.label, "CPU of the manager", "s", map[string]float64{Direct: cpu})
			} else {
				why := map[bool]string{true: "no timestamps", false: "no rotation"}[v.time]
				b.t.note(3, v.label, "wall time to the last line on disk", "s", Direct, why)
				b.t.note(3, v.label, "CPU of the manager", "s", Direct, why)
			}
			for _, p := range b.peers {
				if why := map[bool]string{true: "no timestamps", false: "no built-in rotation"}[v.time]; v.time && !p.Can("time") || v.rotate > 0 && !p.Can("rotate") {
					b.t.note(3, v.label, "wall time to the last line on disk", "s", p.Name(), why)
					b.t.note(3, v.label, "CPU of the manager", "s", p.Name(), why)
					continue
				}
				wall, cpu, lost, err := b.floodPeer(p, env, v.time, v.rotate)
				if err != nil {
					return fmt.Errorf("%s: %w", p.Name(), err)
				}
				b.t.add(3, v.label, "wall time to the last line on disk", "s", map[string]float64{p.Name(): wall.Seconds()})
				b.t.add(3, v.label, "CPU of the manager", "s", map[string]float64{p.Name(): cpu})
				b.t.add(3, v.label, "lines lost, torn or out of order", "lines", map[string]float64{p.Name(): float64(lost)})
			}
		}
	}
	return nil
}

const floodLines = 1_000_000

func (b *bench) floodPeer(p Peer, env []string, stamp bool, rotate int64) (time.Duration, float64, int, error) {
	log := p.LogPath("flood")
	for _, f := range p.LogFiles("flood") {
		os.Remove(f)
	}
	cpu0 := cpuSnapshot(b.managerPids(p))
	start := time.Now()
	app := App{Name: "flood", Script: b.app("flood.js"), Node: true, Time: stamp, Rotate: rotate,
		Env: map[string]string{"FLOOD_LINES": envValue(env, "FLOOD_LINES")}}
	if err := p.Start([]App{app}); err != nil {
		return 0, 0, 0, err
	}
	if !waitUntil(120*time.Second, 5*time.Millisecond, func() bool { return fileEndsWith(log, "END\n") }) {
		return 0, 0, 0, fmt.Errorf("the last line never reached %s", log)
	}
	wall := time.Since(start)
	cpu := cpuSince(cpu0, b.managerPids(p))
	lost, err := checkFlood(floodLines, p.LogFiles("flood")...)
	if err != nil {
		return 0, 0, 0, err
	}
	return wall, cpu, lost, p.DeleteAll()
}

// floodDirect is the same app piped into cat > file, with no manager; the CPU is cat's.
func (b *bench) floodDirect(env []string) (time.Duration, float64, error) {
	out := filepath.Join(b.work, "direct-flood.log")
	os.Remove(out)
	f, err := os.Create(out)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	node := exec.Command("node", b.app("flood.js"))
	node.Env = env
	cat := exec.Command("cat")
	cat.Stdout = f
	pipe, err := node.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	cat.Stdin = pipe
	start := time.Now()
	if err := node.Start(); err != nil {
		return 0, 0, err
	}
	if err := cat.Start(); err != nil {
		node.Process.Kill()
		node.Wait()
		return 0, 0, err
	}
	done := waitUntil(120*time.Second, 5*time.Millisecond, func() bool { return fileEndsWith(out, "END\n") })
	wall := time.Since(start)
	node.Wait()
	cat.Wait()
	if !done {
		return 0, 0, fmt.Errorf("the last line never reached %s", out)
	}
	ru := cat.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return wall, cpu, nil
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := bytes.Cut([]byte(env[i]), []byte("=")); ok && string(k) == key {
			return string(v)
		}
	}
	return ""
}

// checkFlood counts the lines of the flood that are missing, torn (a timestamp in the middle of
// a line: PM2 stamps each chunk it reads, not each line) or out of place.
func checkFlood(want int, paths ...string) (int, error) {
	var data []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		data = append(data, b...)
	}
	next, bad := 0, 0
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		i := bytes.Index(line, []byte("line "))
		if i < 0 {
			if !bytes.HasSuffix(line, []byte("END")) {
				bad++ // the tail of a torn line
			}
			continue
		}
		var n int
		if len(line) < i+12 {
			bad++ // the head of a torn line
			continue
		}
		if _, err := fmt.Sscanf(string(line[i+5:i+12]), "%d", &n); err != nil || n != next {
			bad++
		}
		next = n + 1
	}
	if next < want {
		bad += want - next
	}
	return bad, nil
}

// 7. The daemon's CPU while it only watches 200 processes.
func (b *bench) idle() error {
	app := fmt.Sprintf("sleep, %d apps", b.manyApps())
	// After the start, nobody asks for the list for 65 s: a daemon that samples faster while it
	// is watched (tend, for a minute after the last look) is measured idle, as the row says.
	span, settle := 20*time.Second, 65*time.Second
	if b.o.quick {
		for _, p := range b.peers {
			b.t.note(7, app, "daemon CPU over 20s", "%", p.Name(), "full run only")
		}
		return nil
	}
	return b.each(func(p Peer) error {
		if _, err := b.startAndWait(p, sleepApps(b.manyApps())); err != nil {
			return err
		}
		time.Sleep(settle)
		c0 := cpuSnapshot(b.managerPids(p))
		time.Sleep(span)
		pct := cpuSince(c0, b.managerPids(p)) / span.Seconds() * 100
		b.t.add(7, app, fmt.Sprintf("daemon CPU over %s", span), "%", map[string]float64{p.Name(): pct})
		return p.DeleteAll()
	})
}

// 9. Crash storm: 40 apps that crash 300 ms of CPU after they start, all at once on this machine.
// Under that load each run outlives PM2's min_uptime, so max_restarts never ends the storm. The
// figures are the starts of the busiest app and the manager's CPU from 90 s to 120 s after the
// storm began (one run: it takes two minutes a manager).
func (b *bench) storm() error {
	const apps, from, to = 40, 90 * time.Second, 120 * time.Second
	label := fmt.Sprintf("%d apps crashing at once", apps)
	if b.o.quick {
		for _, p := range b.peers {
			b.t.note(9, label, "starts of the busiest app, 90-120 s", "starts", p.Name(), "full run only")
		}
		return nil
	}
	for _, p := range b.peers {
		log := filepath.Join(b.work, "storm-"+strings.ReplaceAll(p.Name(), " ", "_")+".log")
		os.Remove(log)
		var list []App
		for i := range apps {
			name := fmt.Sprintf("crash%02d", i)
			list = append(list, App{Name: name, Script: b.app("crash.js"), Node: true, Restart: true,
				Env: map[string]string{"STORM_LOG": log, "STORM_APP": name}})
		}
		begin := time.Now()
		if err := p.Start(list); err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
		time.Sleep(time.Until(begin.Add(from)))
		before, c0 := stormStarts(log), cpuSnapshot(b.managerPids(p))
		time.Sleep(time.Until(begin.Add(to)))
		after, cpu := stormStarts(log), cpuSince(c0, b.managerPids(p))
		busiest := 0
		for name, n := range after {
			busiest = max(busiest, n-before[name])
		}
		b.t.add(9, label, "starts of the busiest app, 90-120 s", "starts", map[string]float64{p.Name(): float64(busiest)})
		b.t.add(9, label, "manager CPU, 90-120 s", "%", map[string]float64{p.Name(): cpu / (to - from).Seconds() * 100})
		if err := p.DeleteAll(); err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	return nil
}

// stormStarts counts the starts each app of the storm noted.
func stormStarts(log string) map[string]int {
	data, _ := os.ReadFile(log)
	out := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l != "" {
			out[l]++
		}
	}
	return out
}

// 10. Line latency: an app writes a line every 50 ms holding its wall time; the harness watches
// the log file with inotify and takes, for each line, the time from its writing to its being in
// the file. A manager that holds lines back to gather them shows up here.
func (b *bench) latency() error {
	for _, beside := range []bool{false, true} {
		label := "slowlog.js, a line every 50 ms"
		if beside {
			label += ", beside a flooding app"
		}
		err := b.each(func(p Peer) error {
			log := p.LogPath("slowlog")
			for _, f := range p.LogFiles("slowlog") {
				os.Remove(f)
			}
			apps := []App{{Name: "slowlog", Script: b.app("slowlog.js"), Node: true}}
			if beside {
				// Rotated at 10 MB where the manager can: the flood writes a gigabyte or so.
				apps = append(apps, App{Name: "noisy", Script: b.app("floodfor.js"), Node: true, Rotate: 10 << 20})
			}
			lats, err := lineLatencies(log, func() error { return p.Start(apps) })
			if err != nil {
				return err
			}
			if len(lats) < 90 {
				return fmt.Errorf("%d lines seen of 100", len(lats))
			}
			slices.Sort(lats)
			b.t.add(10, label, "line to disk, median", "ms", map[string]float64{p.Name(): lats[len(lats)/2]})
			b.t.add(10, label, "line to disk, 99th percentile", "ms", map[string]float64{p.Name(): lats[len(lats)*99/100]})
			return p.DeleteAll()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lineLatencies starts the app with start, then reads the log as it grows (inotify) until END,
// returning each t=<µs> line's delay in ms from its writing to the moment it was read.
func lineLatencies(log string, start func() error) ([]float64, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	dir := filepath.Dir(log)
	os.MkdirAll(dir, 0o755)
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CREATE); err != nil {
		return nil, err
	}
	if err := start(); err != nil {
		return nil, err
	}
	var lats []float64
	var off int64
	var carry []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, 200); n > 0 {
			unix.Read(fd, buf) // the events themselves do not matter: the file is read anew
		}
		now := time.Now().UnixMicro()
		f, err := os.Open(log)
		if err != nil {
			continue
		}
		data, _ := io.ReadAll(io.NewSectionReader(f, off, 1<<30))
		f.Close()
		off += int64(len(data))
		carry = append(carry, data...)
		for {
			i := bytes.IndexByte(carry, '\n')
			if i < 0 {
				break
			}
			line := string(carry[:i])
			carry = carry[i+1:]
			if line == "END" {
				return lats, nil
			}
			if us, err := strconv.ParseInt(strings.TrimPrefix(line, "t="), 10, 64); err == nil {
				lats = append(lats, float64(now-us)/1000)
			}
		}
	}
	return lats, fmt.Errorf("END never reached %s", log)
}
