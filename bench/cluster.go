package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tend-sh/tend/bench/wrk"
	"github.com/tend-sh/tend/internal/httpload"
)

// clusterer is a peer that runs an app as instances sharing one port: tend and PM2, both through
// PM2's verbs and an ecosystem file with exec_mode cluster.
type clusterer interface {
	StartCluster(name, script string, instances, port int) error
	Reload(name string) error
	InstancePids(name string) ([]int, error)
}

func (p *cliPeer) StartCluster(name, script string, instances, port int) error {
	cfg := filepath.Join(p.home, "bench-cluster.json")
	app := map[string]any{"name": name, "script": script, "instances": instances, "exec_mode": "cluster",
		"env": map[string]string{"PORT": strconv.Itoa(port)}}
	if err := writeJSON(cfg, map[string]any{"apps": []any{app}}); err != nil {
		return err
	}
	_, err := run(p.Env(), p.bin, "start", cfg)
	return err
}

func (p *cliPeer) Reload(name string) error {
	_, err := run(p.Env(), p.bin, "reload", name)
	return err
}

func (p *cliPeer) InstancePids(name string) ([]int, error) {
	cmd := exec.Command(p.bin, "jlist")
	cmd.Env = p.Env()
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var list []struct {
		Pid  int    `json:"pid"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range list {
		if e.Name == name && e.Pid > 0 {
			pids = append(pids, e.Pid)
		}
	}
	return pids, nil
}

// directCluster is the same app without a manager: the harness's launcher binds one
// SO_REUSEPORT socket per worker and hands it over as fd 3.
type directCluster struct {
	cmd  *exec.Cmd
	addr string
}

func (b *bench) startDirect(script string, workers int) (*directCluster, error) {
	cmd := exec.Command(b.directBin, "-workers", strconv.Itoa(workers), "-port", "0", "--", "node", script)
	// A session of its own, as a service has and as every manager's daemon does. Left in the
	// harness's session, the workers would share wrk's scheduling autogroup
	// (kernel.sched_autogroup_enabled) and win CPU from it that no managed app can: 6 % more
	// requests/s measured here (docs/benchmarks.md, "where tend's worker differs").
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &directCluster{cmd: cmd}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if port, ok := strings.CutPrefix(line, "port="); ok {
			d.addr = "127.0.0.1:" + port
		}
		if line == "ready" {
			go func() { // keep draining its output
				for sc.Scan() {
				}
			}()
			return d, nil
		}
	}
	d.stop()
	return nil, fmt.Errorf("the direct launcher exited before it was ready")
}

func (d *directCluster) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// contender is one column of a cluster workload: it serves the app on addr until stop.
type contender struct {
	name  string
	addr  string
	stop  func()
	peer  clusterer // nil for direct
	app   string    // the app's name in the peer
	notes string    // why this column has no figure
}

// contenders starts the app for every column that can serve it, and notes why the others cannot.
func (b *bench) contenders(n int, label, script string, figures []string, fn func(c contender) error) error {
	// One turn per column; who goes first rotates from run to run, so that no column is always
	// measured on a machine that the columns before it warmed up (or wore out).
	var turns []func() error
	for _, p := range b.peers {
		cl, ok := p.(clusterer)
		if !ok {
			for _, f := range figures {
				b.t.note(n, label, f, "", p.Name(), "no shared port")
			}
			continue
		}
		turns = append(turns, func() error { return b.peerTurn(n, script, p, cl, fn) })
	}
	turns = append(turns, func() error { return b.directTurn(script, fn) })
	if b.rounds == nil {
		b.rounds = map[int]int{}
	}
	first := b.rounds[n] % len(turns)
	b.rounds[n]++
	for i := range turns {
		if err := turns[(first+i)%len(turns)](); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) peerTurn(n int, script string, p Peer, cl clusterer, fn func(c contender) error) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	name := fmt.Sprintf("bench%d", n)
	if err := cl.StartCluster(name, b.app(script), 2, port); err != nil {
		return fmt.Errorf("%s: %w", p.Name(), err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if !waitServing(addr, 30*time.Second) {
		p.DeleteAll()
		return fmt.Errorf("%s: %s never served on %s", p.Name(), script, addr)
	}
	err = fn(contender{name: p.Name(), addr: addr, peer: cl, app: name})
	p.DeleteAll()
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name(), err)
	}
	return nil
}

func (b *bench) directTurn(script string, fn func(c contender) error) error {
	fdScript := strings.TrimSuffix(script, ".js") + "-fd.js"
	d, err := b.startDirect(b.app(fdScript), 2)
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	defer d.stop()
	if !waitServing(d.addr, 30*time.Second) {
		return fmt.Errorf("direct: %s never served", fdScript)
	}
	return fn(contender{name: Direct, addr: d.addr})
}

func (b *bench) loadSpan() time.Duration {
	if b.o.quick {
		return 3 * time.Second
	}
	return 10 * time.Second
}

type loadLoop func(ctx context.Context, addr string, conns int) (*httpload.Result, func())

// underLoad runs disrupt while 32 clients load addr, with a second of load before and after.
func (b *bench) underLoad(addr string, loop loadLoop, disrupt func() error) (*httpload.Result, error) {
	ctx, cancel := context.WithCancel(b.ctx)
	res, wait := loop(ctx, addr, 32)
	time.Sleep(time.Second)
	err := disrupt()
	time.Sleep(time.Second)
	cancel()
	wait()
	return res, err
}

// 4. Requests per second through 2 instances, with keep-alive and with a new connection each.
func (b *bench) clusterHTTP() error {
	const label = "hello.js, 2 instances"
	figs := []string{"requests/s, keep-alive", "requests/s, new connection each"}
	// Enough runs for a ratio to direct to be the median of per-run ratios (table.directRatio).
	runs := b.o.runs
	if !b.o.quick {
		runs = max(runs, minRounds)
	}
	for range runs {
		err := b.contenders(4, label, "hello.js", figs, func(c contender) error {
			// A first load warms the app's JIT and the CPU up; it is not counted, so the column
			// measured first is not the one measured cold.
			if _, err := wrk.Run(b.ctx, wrk.Options{URL: "http://" + c.addr + "/", Threads: 2, Connections: 64,
				Duration: 2 * time.Second, Timeout: 2 * time.Second}); err != nil {
				return err
			}
			for i, newConn := range []bool{false, true} {
				r, err := wrk.Run(b.ctx, wrk.Options{URL: "http://" + c.addr + "/", Threads: 2, Connections: 64,
					Duration: b.loadSpan(), Timeout: 2 * time.Second, NewConnPerRequest: newConn})
				if err != nil {
					return err
				}
				b.t.add(4, label, figs[i], "req/s", map[string]float64{c.name: r.RequestsPerSec})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// 5. Three rolling reloads under load of an app that takes 200 ms per request.
func (b *bench) reloads() error {
	const label = "slow.js (200 ms a request), 2 instances"
	figs := []string{"failed requests, 3 reloads", "refused connections, 3 reloads", "requests served",
		"failed requests, 3 reloads, keep-alive clients"}
	for range b.o.runs {
		err := b.contenders(5, label, "slow.js", figs, func(c contender) error {
			if c.peer == nil {
				for _, f := range figs {
					b.t.note(5, label, f, "", c.name, "no reload")
				}
				return nil
			}
			reload3 := func() error {
				for range 3 {
					if err := c.peer.Reload(c.app); err != nil {
						return err
					}
				}
				return nil
			}
			res, err := b.underLoad(c.addr, httpload.Loop, reload3)
			if err != nil {
				return err
			}
			b.t.add(5, label, figs[0], "requests", map[string]float64{c.name: float64(res.Failed.Load())})
			b.t.add(5, label, figs[1], "connections", map[string]float64{c.name: float64(res.Refused.Load())})
			b.t.add(5, label, figs[2], "requests", map[string]float64{c.name: float64(res.OK.Load())})
			if res, err = b.underLoad(c.addr, httpload.KeepAliveLoop, reload3); err != nil {
				return err
			}
			b.t.add(5, label, figs[3], "requests", map[string]float64{c.name: float64(res.Failed.Load())})
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// 6. Three kill -9 of one instance under load: refused connections and failed requests apart.
func (b *bench) kills() error {
	const label = "hello.js, 2 instances"
	figs := []string{"refused connections, 3 kills", "failed requests, 3 kills"}
	for range b.o.runs {
		err := b.contenders(6, label, "hello.js", figs, func(c contender) error {
			if c.peer == nil {
				for _, f := range figs {
					b.t.note(6, label, f, "", c.name, "no restart")
				}
				return nil
			}
			res, err := b.underLoad(c.addr, httpload.Loop, func() error {
				for range 3 {
					pids, err := c.peer.InstancePids(c.app)
					if err != nil || len(pids) == 0 {
						return fmt.Errorf("no instance to kill: %v", err)
					}
					syscall.Kill(pids[0], syscall.SIGKILL)
					time.Sleep(1500 * time.Millisecond) // the manager brings it back
				}
				return nil
			})
			if err != nil {
				return err
			}
			b.t.add(6, label, figs[0], "connections", map[string]float64{c.name: float64(res.Refused.Load())})
			b.t.add(6, label, figs[1], "requests", map[string]float64{c.name: float64(res.Failed.Load())})
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
