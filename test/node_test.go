package test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

func TestNodeIPCAndWaitReady(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "ready.js")
	os.WriteFile(app, []byte(`
console.log('send=' + typeof process.send);
setTimeout(() => process.send('ready'), 600);
setInterval(() => {}, 1000);
`), 0o644)
	begin := time.Now()
	h.OK("start", app, "--wait-ready", "-s")
	took := time.Since(begin)
	p, _ := h.Get("ready")
	if p.Pm2Env.Status != "online" || took < 600*time.Millisecond {
		t.Fatalf("--wait-ready: start returned after %s with status %q; want ≥ 600ms and online", took, p.Pm2Env.Status)
	}
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "send=function") })

	never := filepath.Join(dir, "never.js")
	os.WriteFile(never, []byte(`setInterval(() => {}, 1000);`), 0o644)
	cmd := newCmd(h, "start", never, "--wait-ready", "--listen-timeout", "1500", "-s")
	startBackground(t, cmd)
	h.WaitFor("never", 5*time.Second, "launching", func(p proc) bool { return p.Pm2Env.Status == "launching" })
	h.WaitStatus("never", "online") // PM2 proceeds once listen_timeout passes
}

func TestEcosystemJS(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server.js"), []byte(`console.log('mode=' + process.env.MODE); setInterval(() => {}, 1000);`), 0o644)
	os.WriteFile(filepath.Join(dir, "ecosystem.config.js"), []byte(`
module.exports = { apps: [{ name: 'web', script: './server.js', env: { MODE: 'js-' + (1 + 1) } }] };
`), 0o644)
	h.OK("start", filepath.Join(dir, "ecosystem.config.js"), "-s")
	p := h.WaitStatus("web", "online")
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "mode=js-2") })

	os.WriteFile(filepath.Join(dir, "broken.config.js"), []byte(`module.exports = {apps: [`), 0o644)
	r := h.Run("start", filepath.Join(dir, "broken.config.js"))
	if r.Code != 2 || !strings.Contains(r.Err, "broken.config.js") || strings.Count(strings.TrimSpace(r.Err), "\n") != 0 {
		t.Fatalf("a broken config: exit %d, %q", r.Code, r.Err)
	}
}

// listenUnix holds a unix socket that accepts connections and never answers.
func listenUnix(path string) (net.Listener, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	go func() {
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	return l, nil
}

func TestInstancesLogFiles(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "worker.js")
	os.WriteFile(app, []byte(`console.log('i am ' + process.env.NODE_APP_INSTANCE); setInterval(() => {}, 1000);`), 0o644)
	h.OK("start", app, "-i", "2", "-s")
	h.OK("start", app, "--name", "merged", "-i", "2", "--merge-logs", "-s")
	ps := h.Jlist()
	if len(ps) != 4 {
		t.Fatalf("want 4 instances, got %d", len(ps))
	}
	for _, p := range ps {
		if p.Pm2Env.ExecMode != "cluster_mode" {
			t.Fatalf("-i with a node app is cluster mode (PM2), got %s", p.Pm2Env.ExecMode)
		}
		want := filepath.Join(h.Home, "logs", p.Name+"-out.log")
		if p.Name == "worker" {
			want = filepath.Join(h.Home, "logs", "worker-out-"+strconv.Itoa(p.PmID)+".log")
			e2e.WaitFile(t, want, 5*time.Second, func(s string) bool {
				return s == "i am "+strconv.Itoa(*p.Pm2Env.NodeAppInstance)+"\n"
			})
		}
		if p.Pm2Env.PmOutLogPath != want {
			t.Fatalf("%s/%d logs to %s, want %s", p.Name, p.PmID, p.Pm2Env.PmOutLogPath, want)
		}
	}
	e2e.WaitFile(t, filepath.Join(h.Home, "logs", "merged-out.log"), 5*time.Second, func(s string) bool {
		return strings.Contains(s, "i am 0\n") && strings.Contains(s, "i am 1\n")
	})
}

// shutdown_with_message: stop asks the app over IPC with "shutdown" instead of kill_signal, as
// PM2 does for apps that cannot get signals; the app exits on its own, well before kill_timeout.
func TestShutdownWithMessage(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.js"), []byte(`
process.on('SIGINT', () => console.log('got SIGINT'));
process.on('message', (m) => { if (m === 'shutdown') { console.log('got shutdown'); process.exit(0); } });
console.log('ready');
setInterval(() => {}, 1000);
`), 0o644)
	os.WriteFile(filepath.Join(dir, "apps.json"), []byte(`{"apps": [{"name": "msg", "script": "app.js", "shutdown_with_message": true, "kill_timeout": 30000}]}`), 0o644)
	h.OK("start", filepath.Join(dir, "apps.json"), "-s")
	p := h.WaitStatus("msg", "online")
	e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "ready") })
	h.OK("stop", "msg", "-s")
	out, _ := os.ReadFile(p.Pm2Env.PmOutLogPath)
	if !strings.Contains(string(out), "got shutdown") || strings.Contains(string(out), "got SIGINT") {
		t.Fatalf("the app should get the message and no signal; its output:\n%s", out)
	}
	if s, _ := h.Get("msg"); s.Pm2Env.Status != "stopped" {
		t.Fatalf("status %q after stop", s.Pm2Env.Status)
	}
}
