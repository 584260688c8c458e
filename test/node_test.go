package test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func needNode(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
}

func TestNodeIPCAndWaitReady(t *testing.T) {
	t.Parallel()
	needNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "ready.js")
	os.WriteFile(app, []byte(`
console.log('send=' + typeof process.send);
setTimeout(() => process.send('ready'), 600);
setInterval(() => {}, 1000);
`), 0o644)
	begin := time.Now()
	h.ok("start", app, "--wait-ready", "-s")
	took := time.Since(begin)
	p, _ := h.get("ready")
	if p.Pm2Env.Status != "online" || took < 600*time.Millisecond {
		t.Fatalf("--wait-ready: start returned after %s with status %q; want ≥ 600ms and online", took, p.Pm2Env.Status)
	}
	waitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "send=function") })

	never := filepath.Join(dir, "never.js")
	os.WriteFile(never, []byte(`setInterval(() => {}, 1000);`), 0o644)
	cmd := newCmd(h, "start", never, "--wait-ready", "--listen-timeout", "1500", "-s")
	startBackground(t, cmd)
	h.waitFor("never", 5*time.Second, "launching", func(p proc) bool { return p.Pm2Env.Status == "launching" })
	h.waitStatus("never", "online") // PM2 proceeds once listen_timeout passes
}

func TestEcosystemJS(t *testing.T) {
	t.Parallel()
	needNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server.js"), []byte(`console.log('mode=' + process.env.MODE); setInterval(() => {}, 1000);`), 0o644)
	os.WriteFile(filepath.Join(dir, "ecosystem.config.js"), []byte(`
module.exports = { apps: [{ name: 'web', script: './server.js', env: { MODE: 'js-' + (1 + 1) } }] };
`), 0o644)
	h.ok("start", filepath.Join(dir, "ecosystem.config.js"), "-s")
	p := h.waitStatus("web", "online")
	waitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "mode=js-2") })

	os.WriteFile(filepath.Join(dir, "broken.config.js"), []byte(`module.exports = {apps: [`), 0o644)
	r := h.run("start", filepath.Join(dir, "broken.config.js"))
	if r.code != 2 || !strings.Contains(r.err, "broken.config.js") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Fatalf("a broken config: exit %d, %q", r.code, r.err)
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
