package test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/test/e2e"
)

// The stream says what happens to an app as it happens: its start, its exit with the code, its
// scale and its deletion; a second follower gets the same.
func TestEventStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "first", "-s") // a daemon to follow
	ev := h.FollowEvents()
	ev2 := h.FollowEvents()
	h.OK("start", e2e.AppBin, "--name", "crash", "--no-autorestart", "-s", "--", "-exit-after", "300ms", "-code", "3")
	ev.WaitFor("crash online", 10*time.Second, func(e events.Event) bool { return e.App == "crash" && e.Kind == "online" })
	exit := ev.WaitFor("crash exit", 10*time.Second, func(e events.Event) bool { return e.App == "crash" && e.Kind == "exit" })
	if exit.ExitCode == nil || *exit.ExitCode != 3 || exit.Pid == 0 || exit.ID == nil {
		t.Errorf("exit event %+v: want exit code 3, the pid and the id", exit)
	}
	ev.WaitFor("crash stopped", 10*time.Second, func(e events.Event) bool { return e.App == "crash" && e.Kind == "stopped" })
	h.OK("scale", "first", "2", "-s")
	sc := ev.WaitFor("scale", 10*time.Second, func(e events.Event) bool { return e.Kind == "scale" })
	if *sc.From != 1 || *sc.To != 2 || sc.App != "first" {
		t.Errorf("scale event %+v", sc)
	}
	h.OK("delete", "crash", "-s")
	ev.WaitFor("delete", 10*time.Second, func(e events.Event) bool { return e.Kind == "delete" && e.App == "crash" })
	ev2.WaitFor("delete, on the second follower", 10*time.Second, func(e events.Event) bool { return e.Kind == "delete" && e.App == "crash" })
}

// Figures are the whole tree's: a bash wrapper with two node children shows their memory, where
// the main pid alone (PM2's figure) is a few MB.
func TestTreeFigures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	e2e.WriteApp(t, dir, "hold.js", "const b = Buffer.alloc(40 << 20, 1); setInterval(() => b[0]++, 1000)\n")
	script := e2e.WriteApp(t, dir, "run.sh", "node hold.js & node hold.js & wait\n")
	h.OK("start", script, "--name", "wrap", "--cwd", dir, "-s")
	p := h.WaitFor("wrap", 20*time.Second, "3 processes over 80 MB", func(p proc) bool {
		return p.Monit.Memory > 80<<20 && h.Pm2Env(p.PmID)["_tend_procs"] == 3.0
	})
	if p.Monit.Memory > 400<<20 {
		t.Errorf("memory %d: more than the tree holds", p.Monit.Memory)
	}
	if out := h.OK("ls"); !strings.Contains(out, "mb") {
		t.Errorf("ls:\n%s", out)
	}
}

// growJS grows by 8 MB every 50 ms while the file named by GROW exists (and NODE_APP_INSTANCE is
// 0 when ONLY0 is set), and serves HTTP on PORT when one is given.
const growJS = `
const fs = require('fs');
const hold = [];
setInterval(() => {
  if (process.env.ONLY0 && process.env.NODE_APP_INSTANCE !== '0') return;
  if (fs.existsSync(process.env.GROW)) hold.push(Buffer.alloc(8 << 20, 1));
}, 50);
if (process.env.PORT) require('http').createServer((q, s) => s.end('ok\n')).listen(Number(process.env.PORT));
else setInterval(() => {}, 1000);
`

// A fork-mode app over max_memory_restart is restarted, counted, and said in tend.log and the
// event stream.
func TestMemoryLimitRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	app := e2e.WriteApp(t, dir, "grow.js", growJS)
	flag := filepath.Join(dir, "grow")
	if r := h.RunEnv([]string{"GROW=" + flag}, "start", app, "--max-memory-restart", "120M", "-s"); r.Code != 0 {
		t.Fatalf("start: %d %s", r.Code, r.Err)
	}
	ev := h.FollowEvents()
	first := h.WaitStatus("grow", "online")
	if got := h.Pm2Env(first.PmID)["max_memory_restart"]; got != float64(120<<20) {
		t.Errorf("jlist max_memory_restart %v, want %d", got, 120<<20)
	}
	os.WriteFile(flag, nil, 0o644)
	e := ev.WaitFor("memory_limit", 30*time.Second, func(e events.Event) bool { return e.Kind == "memory_limit" })
	os.Remove(flag)
	if e.Memory <= e.Limit || e.Limit != 120<<20 || e.Reason != "restart" || e.Pid != first.Pid {
		t.Errorf("memory_limit event %+v", e)
	}
	p := h.WaitFor("grow", 20*time.Second, "restarted once, online", func(p proc) bool {
		return p.Pm2Env.RestartTime >= 1 && p.Pm2Env.Status == "online" && p.Pid != first.Pid
	})
	if n := h.Pm2Env(p.PmID)["_tend_memory_restarts"]; n == nil || n.(float64) < 1 {
		t.Errorf("_tend_memory_restarts %v", n)
	}
	e2e.WaitFile(t, filepath.Join(h.Home, "tend.log"), 10*time.Second, func(s string) bool { return strings.Contains(s, "memory limit") })
}

// In cluster mode the memory limit reloads the instance: no request fails.
func TestMemoryLimitReload(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	app := e2e.WriteApp(t, dir, "grow.js", growJS)
	flag := filepath.Join(dir, "grow")
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if r := h.RunEnv([]string{"GROW=" + flag, "ONLY0=1", "PORT=" + strconv.Itoa(port)}, "start", app, "-i", "2",
		"--max-memory-restart", "120M", "--listen-timeout", e2e.ListenTimeout, "-s"); r.Code != 0 {
		t.Fatalf("start: %d %s", r.Code, r.Err)
	}
	h.WaitOnline("grow", 2)
	ev := h.FollowEvents()
	var e events.Event
	res := e2e.LoadDuring(t, addr, func() {
		os.WriteFile(flag, nil, 0o644)
		e = ev.WaitFor("memory_limit", 30*time.Second, func(e events.Event) bool { return e.Kind == "memory_limit" })
		os.Remove(flag)
		ev.WaitFor("reload done", 30*time.Second, func(e events.Event) bool { return e.Kind == "reload" && e.Reason == "done" })
	})
	if e.Reason != "reload" || *e.ID != 0 {
		t.Errorf("memory_limit event %+v: want a reload of id 0", e)
	}
	if n, r := res.Failed.Load(), res.Refused.Load(); n+r != 0 {
		t.Errorf("%d requests failed and %d were refused during the memory-limit reload (%d served)", n, r, res.OK.Load())
	}
}

// metricsJS reports custom metrics the two ways an app can: tend's message and @pm2/io's, then
// floods names past the cap and sends malformed ones.
const metricsJS = `
process.send({type: 'tend:metric', name: 'queue', value: 3, unit: 'jobs'});
process.send({type: 'axm:monitor', data: {'Heap Size': {value: '10.5', unit: 'MiB'}, 'Loop delay': {value: 1.25}}});
process.send({type: 'tend:metric', name: '', value: 1});
process.send({type: 'tend:metric', name: 'obj', value: {a: 1}});
process.send({type: 'axm:monitor', data: 'nope'});
for (let i = 0; i < 300; i++) process.send({type: 'tend:metric', name: 'n' + i, value: i});
process.send({type: 'tend:metric', name: 'done', value: 1});
setInterval(() => {}, 1000);
`

// Custom metrics show in jlist's axm_monitor and /metrics; /metrics parses with Prometheus' own
// parser and passes its linter; bad metrics are counted.
func TestCustomMetricsAndPrometheus(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "m.js", metricsJS)
	h.OK("start", app, "--name", "api", "--namespace", "shop", "-s")
	p := h.WaitFor("api", 20*time.Second, "its custom metrics", func(p proc) bool {
		axm, _ := h.Pm2Env(p.PmID)["axm_monitor"].(map[string]any)
		return axm["queue"] != nil && axm["Heap Size"] != nil
	})
	axm := h.Pm2Env(p.PmID)["axm_monitor"].(map[string]any)
	if q := axm["queue"].(map[string]any); q["value"] != 3.0 || q["unit"] != "jobs" {
		t.Errorf("axm_monitor.queue %v", q)
	}
	if hs := axm["Heap Size"].(map[string]any); hs["value"] != "10.5" || hs["unit"] != "MiB" {
		t.Errorf("axm_monitor['Heap Size'] %v", hs)
	}
	if len(axm) != 200 {
		t.Errorf("axm_monitor has %d names, want the cap, 200", len(axm))
	}
	if !strings.Contains(h.OK("prettylist"), "'Heap Size': { value: '10.5', unit: 'MiB' }") {
		t.Error("prettylist lacks the @pm2/io metric as PM2 prints it")
	}

	text := h.OK("metrics")
	parser := expfmt.NewTextParser(model.LegacyValidation) // the strict, classic names
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses /metrics: %v\n%s", err, text)
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", err, problems)
	}
	series := func(name string, labels map[string]string) *dto.Metric {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("/metrics has no %s", name)
		}
	next:
		for _, m := range f.Metric {
			for k, v := range labels {
				found := false
				for _, l := range m.Label {
					found = found || l.GetName() == k && l.GetValue() == v
				}
				if !found {
					continue next
				}
			}
			return m
		}
		t.Fatalf("%s has no series with %v", name, labels)
		return nil
	}
	who := map[string]string{"app": "api", "namespace": "shop", "instance": "0", "id": strconv.Itoa(p.PmID)}
	for _, name := range []string{"tend_process_cpu_seconds_total", "tend_process_restarts_total"} {
		series(name, who)
	}
	if m := series("tend_process_memory_bytes", who); m.GetGauge().GetValue() <= 0 {
		t.Errorf("memory %v", m)
	}
	if m := series("tend_process_uptime_seconds", who); m.GetGauge().GetValue() < 0 {
		t.Errorf("uptime %v", m)
	}
	online := map[string]string{"app": "api", "status": "online"}
	if m := series("tend_process_status", online); m.GetGauge().GetValue() != 1 {
		t.Errorf("status online %v", m)
	}
	if m := series("tend_app_metric", map[string]string{"app": "api", "name": "queue", "unit": "jobs"}); m.GetGauge().GetValue() != 3 {
		t.Errorf("tend_app_metric queue %v", m)
	}
	if m := series("tend_app_metric", map[string]string{"name": "Heap Size"}); m.GetGauge().GetValue() != 10.5 {
		t.Errorf("tend_app_metric Heap Size %v", m)
	}
	if m := series("tend_app_metrics_dropped_total", nil); m.GetCounter().GetValue() < 3+102 {
		t.Errorf("dropped %v: want the 3 malformed and the 102 past the cap", m)
	}
	for _, name := range []string{"tend_daemon_cpu_seconds_total", "tend_daemon_memory_bytes", "tend_daemon_goroutines", "tend_daemon_samples_total", "tend_log_lines_total"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if fams["tend_process_cpu_seconds_total"].GetType() != dto.MetricType_COUNTER {
		t.Error("tend_process_cpu_seconds_total is not a counter")
	}
	e2e.WaitFile(t, filepath.Join(h.Home, "tend.log"), 10*time.Second, func(s string) bool {
		return strings.Contains(s, "custom metrics: this instance reports more names than tend keeps")
	})
}

// scrape GETs /metrics at addr.
func scrape(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), err
}

// The daemon serves /metrics on TCP when told to (and nothing else there); a port in use is
// refused in one line; `tend metrics --listen` serves it in the foreground.
func TestMetricsListen(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "api", "-s")
	addr := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	h.OK("set", "metrics_listen", addr)
	text, err := scrape(addr)
	if err != nil || !strings.Contains(text, `tend_process_memory_bytes{app="api"`) {
		t.Fatalf("scrape: %v\n%s", err, text)
	}
	if resp, err := http.Get("http://" + addr + "/v1/processes"); err == nil {
		if resp.StatusCode != 404 {
			t.Errorf("the control API answers on the metrics port: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r := h.Run("set", "metrics_listen", busy.Addr().String())
	if r.Code == 0 || !strings.Contains(r.Err, "is in use") || strings.Count(r.Err, "\n") != 1 {
		t.Errorf("set metrics_listen on a busy port: exit %d, %q", r.Code, r.Err)
	}
	if _, err := scrape(addr); err != nil {
		t.Errorf("the old address stopped serving after a refused change: %v", err)
	}
	if got := strings.TrimSpace(h.OK("get", "metrics_listen")); got != addr {
		t.Errorf("get metrics_listen: %q, want %q", got, addr)
	}
	h.OK("unset", "metrics_listen")
	if _, err := scrape(addr); err == nil {
		t.Error("still served after unset")
	}

	// In the foreground, until interrupted.
	fg := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	cmd := exec.Command(h.Bin, "metrics", "--listen", fg)
	cmd.Env = h.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	e2e.Poll(10*time.Second, func() bool { _, err := scrape(fg); return err == nil })
	if text, err := scrape(fg); err != nil || !strings.Contains(text, "tend_daemon_memory_bytes") {
		t.Errorf("tend metrics --listen: %v", err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("tend metrics --listen after Ctrl-C: %v; %s", err, stderr.String())
	}
}

// A Go app reports a metric through pkg/worker.Metric.
func TestWorkerMetric(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "go", "--port", strconv.Itoa(e2e.FreePort(t)), "-s", "--", "-serve", "-metric", "queue=7")
	h.WaitFor("go", 20*time.Second, "the metric queue=7", func(p proc) bool {
		axm, _ := h.Pm2Env(p.PmID)["axm_monitor"].(map[string]any)
		q, _ := axm["queue"].(map[string]any)
		return q["value"] == 7.0 && q["unit"] == "items"
	})
	if out := h.OK("describe", "go"); !strings.Contains(out, "queue  7 items") {
		t.Errorf("describe lacks the metric:\n%s", out)
	}
}

// A Node app in cluster mode reports its event loop's delay and its active handles through
// tend's preload, with no change to the app; TEND_NODE_METRICS=0 turns that off.
func TestNodePreloadMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	off := e2e.WriteApp(t, dir, "off.js", e2e.HelloJS)
	on := e2e.WriteApp(t, dir, "on.js", e2e.HelloJS)
	// The app without figures starts first: by the time the other reports (every 5 s from its
	// start), it would have reported too.
	h.StartCluster(off, 1, "TEND_NODE_METRICS=0")
	quiet := h.WaitOnline("off", 1)[0]
	h.StartCluster(on, 1)
	h.WaitFor("on", 20*time.Second, "the preload's figures", func(p proc) bool {
		axm, _ := h.Pm2Env(p.PmID)["axm_monitor"].(map[string]any)
		d, _ := axm["event loop delay p99"].(map[string]any)
		a, _ := axm["active handles"].(map[string]any)
		return d["unit"] == "ms" && a["value"] != nil && a["value"].(float64) >= 1
	})
	if axm, _ := h.Pm2Env(quiet.PmID)["axm_monitor"].(map[string]any); len(axm) != 0 {
		t.Errorf("TEND_NODE_METRICS=0: axm_monitor %v", axm)
	}
}
