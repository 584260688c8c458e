package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/httpload"
	"github.com/tend-sh/tend/test/e2e"
)

func pids(ps []proc) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.Pid)
	}
	return out
}

// spread sends n requests, each on a new connection, and counts the answers per instance.
func spread(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		w, err := httpload.Get(addr)
		if err != nil {
			t.Fatalf("request to %s: %v", addr, err)
		}
		got[w]++
	}
	return got
}

func TestClusterSharesOnePort(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "hello.js", e2e.HelloJS)
	addr := h.StartCluster(app, 2)
	ps := h.WaitOnline("hello", 2)
	for i, p := range ps {
		if p.Pm2Env.ExecMode != "cluster_mode" || p.Pm2Env.NodeAppInstance == nil || *p.Pm2Env.NodeAppInstance != i {
			t.Errorf("instance %d: exec_mode %q NODE_APP_INSTANCE %v", i, p.Pm2Env.ExecMode, p.Pm2Env.NodeAppInstance)
		}
	}
	got := spread(t, addr, 300)
	t.Logf("300 new connections over 2 instances: %v", got)
	for _, w := range []string{"0", "1"} {
		if got[w] < 75 {
			t.Errorf("instance %s served %d of 300 connections; want at least 25%%", w, got[w])
		}
	}

	// A stopped app holds no socket: its clients are refused, not left waiting.
	h.OK("stop", "hello", "-s")
	if _, err := httpload.Get(addr); !isRefused(err) {
		t.Errorf("after stop, a connection got %v; want it refused", err)
	}
	h.OK("start", "hello", "-s")
	h.WaitOnline("hello", 2)
	if _, err := httpload.Get(addr); err != nil {
		t.Errorf("after start again: %v", err)
	}
}

func isRefused(err error) bool { return err != nil && strings.Contains(err.Error(), "refused") }

func TestClusterReloadUnderLoadFailsNothing(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "slow.js", e2e.SlowJS)
	addr := h.StartCluster(app, 2)
	before := pids(h.WaitOnline("slow", 2))
	res := e2e.LoadDuring(t, addr, func() {
		for range 3 {
			h.OK("reload", "slow", "-s")
		}
	})
	after := h.WaitOnline("slow", 2)
	t.Logf("3 reloads under load: %d served, %d failed, %d refused; pids %v → %v",
		res.OK.Load(), res.Failed.Load(), res.Refused.Load(), before, pids(after))
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 || res.OK.Load() == 0 {
		t.Errorf("want 0 failed and 0 refused requests over 3 reloads, got %d failed, %d refused (%d served)",
			res.Failed.Load(), res.Refused.Load(), res.OK.Load())
	}
	for i, p := range after {
		if slices.Contains(before, p.Pid) {
			t.Errorf("instance %d still runs pid %d after 3 reloads", i, p.Pid)
		}
		if p.Pm2Env.RestartTime != 3 {
			t.Errorf("instance %d: restart_time %d after 3 reloads; want 3 (PM2 counts reloads)", i, p.Pm2Env.RestartTime)
		}
	}
}

func TestClusterKill9UnderLoadRefusesNothing(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "hello.js", e2e.HelloJS)
	addr := h.StartCluster(app, 2)
	h.WaitOnline("hello", 2)
	res := e2e.LoadDuring(t, addr, func() {
		for range 3 {
			victim := h.Instances("hello")[0].Pid
			syscall.Kill(victim, syscall.SIGKILL)
			h.WaitFor("hello", 10*time.Second, "a new process online after kill -9", func(p proc) bool {
				return p.Pid != victim && p.Pid != 0 && p.Pm2Env.Status == "online"
			})
		}
	})
	t.Logf("3 × kill -9 under load: %d served, %d failed (accepted by the killed process), %d refused",
		res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Refused.Load() != 0 || res.OK.Load() == 0 {
		t.Errorf("want no refused connection while an instance is killed, got %d refused (%d served)", res.Refused.Load(), res.OK.Load())
	}
	if ps := h.WaitOnline("hello", 2); ps[0].Pm2Env.RestartTime != 3 {
		t.Errorf("restart_time %d after 3 kills; want 3", ps[0].Pm2Env.RestartTime)
	}
}

func TestClusterReloadFailureKeepsTheOldServing(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	crash := filepath.Join(dir, "crash")
	h.ExpectLogError("reload failed", "before it was ready") // the broken build below
	app := e2e.WriteApp(t, dir, "app.js", `
if (require('fs').existsSync(process.env.CRASH_FILE)) { console.error('broken build'); process.exit(1); }
`+e2e.HelloJS)
	addr := h.StartCluster(app, 2, "CRASH_FILE="+crash)
	before := pids(h.WaitOnline("app", 2))
	os.WriteFile(crash, nil, 0o644)
	r := h.Run("reload", "app", "-s")
	if r.Code == 0 || !strings.Contains(r.Err, "keeps serving") || strings.Count(strings.TrimSpace(r.Err), "\n") != 0 {
		t.Fatalf("reload of a broken app: exit %d, stderr %q; want a failure saying the old process keeps serving, on one line", r.Code, r.Err)
	}
	t.Logf("reload of an app that exits at once: %s", strings.TrimSpace(r.Err))
	after := h.WaitOnline("app", 2)
	if !slices.Equal(before, pids(after)) {
		t.Errorf("pids changed from %v to %v; the old processes should keep serving", before, pids(after))
	}
	if got := spread(t, addr, 20); got["0"]+got["1"] != 20 {
		t.Errorf("after the failed reload: %v", got)
	}
}

func TestClusterPortConflicts(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	app := e2e.WriteApp(t, dir, "hello.js", e2e.HelloJS)
	// Both refusals below are logged as what they are.
	h.ExpectLogError("is already in use by another program", `is already used by app \"first\"`)

	// Another program holds the port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	r := h.RunEnv([]string{"PORT=" + strconv.Itoa(taken)}, "start", app, "-i", "2", "--name", "clash", "-s")
	if r.Code == 0 || !strings.Contains(r.Err, fmt.Sprintf("port %d", taken)) || !strings.Contains(r.Err, "in use") {
		t.Fatalf("start on a port in use: exit %d, stderr %q; want a failure naming port %d", r.Code, r.Err, taken)
	}
	t.Logf("port held by another program: %s", strings.TrimSpace(r.Err))
	for _, p := range h.Instances("clash") {
		if p.Pid != 0 || p.Pm2Env.Status != "errored" {
			t.Errorf("instance %d: pid %d status %q; want nothing left running, errored", p.PmID, p.Pid, p.Pm2Env.Status)
		}
	}

	// Two apps asking for one port: the second is told which app has it.
	port := e2e.FreePort(t)
	if r := h.RunEnv([]string{"PORT=" + strconv.Itoa(port)}, "start", app, "-i", "2", "--name", "first", "--listen-timeout", e2e.ListenTimeout, "-s"); r.Code != 0 {
		t.Fatalf("start first: exit %d: %s", r.Code, r.Err)
	}
	app2 := e2e.WriteApp(t, dir, "other.js", e2e.HelloJS)
	r = h.RunEnv([]string{"PORT=" + strconv.Itoa(port)}, "start", app2, "--name", "second", "-i", "2", "-s")
	if r.Code == 0 || !strings.Contains(r.Err, `app "first"`) {
		t.Fatalf("second app on the same port: exit %d, stderr %q; want a failure naming app \"first\"", r.Code, r.Err)
	}
	t.Logf("port held by another app: %s", strings.TrimSpace(r.Err))
	got := spread(t, fmt.Sprintf("127.0.0.1:%d", port), 50)
	if got["0"]+got["1"] != 50 {
		t.Errorf("the first app should serve every request: %v", got)
	}
}

func TestClusterScale(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "hello.js", e2e.HelloJS)
	addr := h.StartCluster(app, 2)
	first := pids(h.WaitOnline("hello", 2))

	h.OK("scale", "hello", "3", "-s")
	ps := h.WaitOnline("hello", 3)
	if !slices.Equal(pids(ps)[:2], first) {
		t.Errorf("scale up disturbed the running instances: %v → %v", first, pids(ps))
	}
	got := spread(t, addr, 300)
	t.Logf("after scale to 3, 300 connections: %v", got)
	for _, w := range []string{"0", "1", "2"} {
		if got[w] < 50 {
			t.Errorf("instance %s served %d of 300 connections after scale up", w, got[w])
		}
	}

	// PM2 removes the lowest ids first: the instance the scale up added stays.
	newest := ps[2].Pid
	res := e2e.LoadDuring(t, addr, func() { h.OK("scale", "hello", "1", "-s") })
	ps = h.WaitOnline("hello", 1)
	if ps[0].Pid != newest {
		t.Errorf("scale down kept pid %d; want the newest instance, pid %d", ps[0].Pid, newest)
	}
	t.Logf("scale 3 → 1 under load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Refused.Load() != 0 || res.Failed.Load() != 0 {
		t.Errorf("scale down under load: %d failed, %d refused; want 0 and 0", res.Failed.Load(), res.Refused.Load())
	}
	if got := spread(t, addr, 20); got["2"] != 20 {
		t.Errorf("after scale to 1: %v; want instance 2 to serve all", got)
	}
	h.OK("scale", "hello", "+1", "-s")
	h.WaitOnline("hello", 2)
	h.OK("scale", "hello", "-1", "-s")
	h.WaitOnline("hello", 1)

	for _, bad := range [][]string{{"scale", "hello", "0"}, {"scale", "hello", "many"}, {"scale", "nope", "2"}} {
		if r := h.Run(bad...); r.Code == 0 || strings.Count(strings.TrimSpace(r.Err), "\n") != 0 {
			t.Errorf("tend %s: exit %d, stderr %q; want one line and a failure", strings.Join(bad, " "), r.Code, r.Err)
		}
	}
}

// -i takes what PM2 takes, read as PM2's parseInt reads it (-99 on few CPUs is 1, 1.5 is 1, a
// word is max), and says how it read it; a count over the limit is refused in one line.
func TestClusterLooseInstanceCounts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "hello.js", e2e.HelloJS)
	port := strconv.Itoa(e2e.FreePort(t))
	for _, tc := range []struct {
		arg  string
		want int
	}{{"-99", 1}, {"1.5", 1}, {"many", config.CPUCount()}} {
		name := "n" + strings.NewReplacer("-", "m", ".", "p").Replace(tc.arg)
		r := h.Run("start", app, "--name", name, "-i", tc.arg, "--port", port, "-s")
		if r.Code != 0 || !strings.Contains(r.Err, "note: -i:") {
			t.Fatalf("-i %s: exit %d, stderr %q; want a start and a note", tc.arg, r.Code, r.Err)
		}
		h.WaitOnline(name, tc.want)
		h.OK("delete", name, "-s")
	}
	if r := h.Run("start", app, "-i", "100000"); r.Code != 2 || strings.Count(strings.TrimSpace(r.Err), "\n") != 0 {
		t.Errorf("-i 100000: exit %d, stderr %q; want exit 2 and one line", r.Code, r.Err)
	}
}

// A Go app under cluster mode: its slot sockets come as LISTEN_FDS, and pkg/worker takes them,
// says ready and receives messages.
func TestClusterListenFdsGoApp(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	h.OK("start", e2e.AppBin, "--name", "goapp", "-i", "2", "--port", strconv.Itoa(port), "-s", "--", "-serve", "-ready-after", "50ms")
	ps := h.WaitOnline("goapp", 2)
	got := spread(t, addr, 200)
	if got["0"] < 50 || got["1"] < 50 {
		t.Errorf("200 connections over 2 Go instances: %v", got)
	}
	e2e.WaitFile(t, ps[0].Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool {
		return strings.Contains(s, "listening on 1 socket(s), LISTEN_PID cleared=true")
	})
	h.OK("msg", "goapp", `{"hello":"go"}`)
	for _, p := range ps {
		e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, `msg={"hello":"go"}`) })
	}

	res := e2e.LoadDuring(t, addr, func() { h.OK("reload", "goapp", "-s") })
	t.Logf("reload of a Go app under load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	// Failed requests are the app's: a Go server drains on its own signal handling, and
	// http.Server.Shutdown can drop a connection accepted at the instant it starts. What tend
	// owns is that no connection is refused.
	if res.Refused.Load() != 0 {
		t.Errorf("reload of a Go app refused %d connections; want 0", res.Refused.Load())
	}
	after := h.WaitOnline("goapp", 2)
	if slices.Equal(pids(ps), pids(after)) {
		t.Errorf("reload did not replace the processes: %v", pids(after))
	}
}

// Messages: tend msg reaches process.on('message'), and an instance reaches another through
// PM2's process:msg packet.
func TestClusterMessages(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "talk.js", `
const me = Number(process.env.NODE_APP_INSTANCE);
process.on('message', (m) => {
  console.log('got ' + JSON.stringify(m));
  if (m && m.say === 'pass-it-on' && me === 0) {
    process.send({ type: 'process:msg', id: Number(process.env.PEER), data: { hello: 'from 0' } });
  }
});
process.send('ready'); // the handler is in place: a message sent before it would be lost
`)
	// Online once the app says so (it listens on nothing, so the default would be listen_timeout).
	h.OK("start", app, "-i", "2", "--wait-ready", "--listen-timeout", e2e.ListenTimeout, "-s")
	ps := h.WaitOnline("talk", 2)
	if r := h.RunEnv(nil, "msg", "talk", `{"say":"hi"}`); r.Code != 0 {
		t.Fatalf("msg: exit %d: %s", r.Code, r.Err)
	}
	for _, p := range ps {
		e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, `got {"say":"hi"}`) })
	}
	// Instance 0 forwards to instance 1 by pm_id, which it reads from PEER. The list is empty
	// after the delete, so the ids start from 0 again, as in PM2: the same ids as before.
	h.OK("delete", "talk", "-s")
	if r := h.RunEnv([]string{"PEER=" + strconv.Itoa(ps[1].PmID)}, "start", app, "-i", "2", "--wait-ready", "--listen-timeout", e2e.ListenTimeout, "-s"); r.Code != 0 {
		t.Fatalf("start: exit %d: %s", r.Code, r.Err)
	}
	ps = h.WaitOnline("talk", 2)
	h.OK("msg", strconv.Itoa(ps[0].PmID), `{"say":"pass-it-on"}`)
	e2e.WaitFile(t, ps[1].Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool {
		return strings.Contains(s, `"type":"process:msg"`) && strings.Contains(s, `"data":{"hello":"from 0"}`)
	})

	for _, bad := range [][]string{{"msg", "talk", "{not json"}, {"msg", "nope", `"x"`}} {
		if r := h.Run(bad...); r.Code == 0 || strings.Count(strings.TrimSpace(r.Err), "\n") != 0 {
			t.Errorf("tend %s: exit %d, stderr %q; want one line and a failure", strings.Join(bad, " "), r.Code, r.Err)
		}
	}
}

// A cluster instance is launching until it listens; an app that never listens (a queue worker)
// turns online when listen_timeout passes.
func TestClusterLaunchingUntilListening(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	app := e2e.WriteApp(t, dir, "late.js", `setTimeout(() => {`+e2e.HelloJS+`}, 1500);`)
	port := e2e.FreePort(t)
	cmd := newCmd(h, "start", app, "-i", "2", "-s")
	cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(port))
	startBackground(t, cmd)
	h.WaitFor("late", 5*time.Second, "launching", func(p proc) bool { return p.Pm2Env.Status == "launching" && p.Pid > 0 })
	h.WaitOnline("late", 2)

	worker := e2e.WriteApp(t, dir, "worker.js", `setInterval(() => {}, 1000);`)
	begin := time.Now()
	h.OK("start", worker, "-i", "2", "--listen-timeout", "800", "-s")
	h.WaitOnline("worker", 2)
	if took := time.Since(begin); took < 800*time.Millisecond {
		t.Errorf("a cluster app that never listens was online after %s; want listen_timeout (800ms)", took)
	}
}

// A Node whose cluster protocol tend does not know gets its sockets through the preload.
func TestClusterPreloadShim(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "slow.js", e2e.SlowJS)
	addr := h.StartCluster(app, 2, "TEND_NODE_SHIM=1")
	h.WaitOnline("slow", 2)
	if got := spread(t, addr, 10); got["0"]+got["1"] != 10 {
		t.Errorf("10 connections through the shim: %v", got)
	}
	res := e2e.LoadDuring(t, addr, func() { h.OK("reload", "slow", "-s") })
	t.Logf("reload through the shim under load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 {
		t.Errorf("want 0 failed and 0 refused, got %d and %d", res.Failed.Load(), res.Refused.Load())
	}
}

// https (whose workers need the primary's server data echoed: TLS ticket keys) and a plain net
// server, two ports in one app.
func TestClusterHTTPSAndNet(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	app := e2e.WriteApp(t, dir, "tls.js", `
const https = require('https'), net = require('net'), fs = require('fs');
const w = process.env.NODE_APP_INSTANCE;
https.createServer({ key: fs.readFileSync(process.env.KEY), cert: fs.readFileSync(process.env.CERT) },
  (req, res) => { res.setHeader('X-Worker', w); res.end('tls\n'); }).listen(Number(process.env.PORT));
net.createServer((s) => s.end('raw ' + w + '\n')).listen(Number(process.env.PORT2), '127.0.0.1');
`)
	port, port2 := e2e.FreePort(t), e2e.FreePort(t)
	env := []string{"PORT=" + strconv.Itoa(port), "PORT2=" + strconv.Itoa(port2), "KEY=" + keyFile, "CERT=" + certFile}
	if r := h.RunEnv(env, "start", app, "-i", "2", "--listen-timeout", e2e.ListenTimeout, "-s"); r.Code != 0 {
		t.Fatalf("start: exit %d: %s", r.Code, r.Err)
	}
	h.WaitOnline("tls", 2)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	seen := map[string]int{}
	for range 40 {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("https: %v", err)
		}
		resp.Body.Close()
		seen[resp.Header.Get("X-Worker")]++
	}
	if seen["0"] == 0 || seen["1"] == 0 {
		t.Errorf("https answers per instance: %v", seen)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, 64)
	n, _ := c.Read(b)
	if !strings.HasPrefix(string(b[:n]), "raw ") {
		t.Errorf("net server answered %q", b[:n])
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// The proxy fallback: an app that binds PORT itself, each instance on a private port, the
// daemon relaying the public one.
func TestClusterProxyForAppsThatBind(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "bind.py", `
import http.server, os, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.05)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.send_header("X-Worker", os.environ["NODE_APP_INSTANCE"])
        self.end_headers()
        self.wfile.write(b"hi\n")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`)
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	h.OK("start", app, "-i", "2", "--port", strconv.Itoa(port), "--proxy", "--listen-timeout", e2e.ListenTimeout, "-s")
	h.WaitOnline("bind", 2)
	if got := spread(t, addr, 40); got["0"] == 0 || got["1"] == 0 {
		t.Errorf("40 connections through the proxy: %v", got)
	}
	res := e2e.LoadDuring(t, addr, func() { h.OK("reload", "bind", "-s") })
	t.Logf("reload through the proxy under load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 {
		t.Errorf("want 0 failed and 0 refused, got %d and %d", res.Failed.Load(), res.Refused.Load())
	}
	res = e2e.LoadDuring(t, addr, func() {
		victim := h.Instances("bind")[0].Pid
		syscall.Kill(victim, syscall.SIGKILL)
		h.WaitFor("bind", 10*time.Second, "a new process online after kill -9", func(p proc) bool {
			return p.Pid != victim && p.Pid != 0 && p.Pm2Env.Status == "online"
		})
	})
	t.Logf("kill -9 behind the proxy under load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Refused.Load() != 0 {
		t.Errorf("kill -9 behind the proxy refused %d connections", res.Refused.Load())
	}
	h.OK("stop", "bind", "-s")
	if _, err := httpload.Get(addr); !isRefused(err) {
		t.Errorf("after stop: %v; want refused", err)
	}
	if r := h.Run("start", app, "--name", "noport", "--proxy"); r.Code != 2 {
		t.Errorf("--proxy without --port: exit %d, %q", r.Code, r.Err)
	}
}

// Readiness of an app with inherited sockets: READY=1 on NOTIFY_SOCKET (systemd's protocol)
// makes it online at once; without it, it is online after min_uptime.
func TestClusterNotifyReady(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	port := e2e.FreePort(t)
	begin := time.Now()
	h.OK("start", e2e.AppBin, "--name", "notify", "--port", strconv.Itoa(port), "--min-uptime", "20s", "-s", "--", "-serve", "-notify-after", "100ms")
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("start took %s; READY=1 should make the instance online long before min_uptime (20s)", took)
	}
	if p, _ := h.Get("notify"); p.Pm2Env.Status != "online" {
		t.Errorf("status %q after READY=1", p.Pm2Env.Status)
	}
	port2 := e2e.FreePort(t)
	cmd := newCmd(h, "start", e2e.AppBin, "--name", "quiet", "--port", strconv.Itoa(port2), "--min-uptime", "1500ms", "-s", "--", "-serve")
	startBackground(t, cmd)
	h.WaitFor("quiet", 5*time.Second, "launching", func(p proc) bool { return p.Pm2Env.Status == "launching" && p.Pid > 0 })
	h.WaitOnline("quiet", 1)
}

// A config file run again with fewer instances: the kept one restarts while the removed ones
// still hold the port; it must not find the port "in use", and slots stay unique.
func TestClusterConfigShrinkAndSlots(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	port := e2e.FreePort(t)
	cfg := filepath.Join(dir, "apps.json")
	write := func(n int) {
		os.WriteFile(cfg, []byte(fmt.Sprintf(`{"apps":[{"name":"api","script":%q,"args":["-serve","-ready-after","20ms"],"instances":%d,"port":%d}]}`, e2e.AppBin, n, port)), 0o644)
	}
	write(3)
	h.OK("start", cfg, "-s")
	ps := h.WaitOnline("api", 3)
	// Delete the middle instance, then run the file again: the new instance takes slot 1 back.
	h.OK("delete", strconv.Itoa(ps[1].PmID), "-s")
	h.OK("start", cfg, "-s")
	ps = h.WaitOnline("api", 3)
	var slots []int
	for _, p := range ps {
		slots = append(slots, *p.Pm2Env.NodeAppInstance)
	}
	slices.Sort(slots)
	if !slices.Equal(slots, []int{0, 1, 2}) {
		t.Errorf("slots after delete and start again: %v; want 0, 1, 2", slots)
	}
	write(1)
	if r := h.Run("start", cfg, "-s"); r.Code != 0 {
		t.Fatalf("start with fewer instances: exit %d: %s", r.Code, r.Err)
	}
	h.WaitOnline("api", 1)
	if got := spread(t, fmt.Sprintf("127.0.0.1:%d", port), 10); len(got) != 1 {
		t.Errorf("after shrinking to 1: %v; want one instance to serve all", got)
	}
}

// A server an online instance opens later on a port that is taken: the app gets the error from
// listen() and keeps serving; tend does not kill it.
func TestClusterLateListenFailureKeepsServing(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	app := e2e.WriteApp(t, t.TempDir(), "late.js", e2e.HelloJS+`
setTimeout(() => {
  require('net').createServer().on('error', (e) => console.log('second listen: ' + e.code))
    .listen(Number(process.env.TAKEN), '127.0.0.1');
}, 300);
`)
	port := e2e.FreePort(t)
	env := []string{"PORT=" + strconv.Itoa(port), "TAKEN=" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
	if r := h.RunEnv(env, "start", app, "-i", "2", "--listen-timeout", e2e.ListenTimeout, "-s"); r.Code != 0 {
		t.Fatalf("start: exit %d: %s", r.Code, r.Err)
	}
	ps := h.WaitOnline("late", 2)
	e2e.WaitFile(t, ps[0].Pm2Env.PmOutLogPath, 5*time.Second, func(s string) bool { return strings.Contains(s, "second listen: EADDRINUSE") })
	after := h.WaitOnline("late", 2)
	if !slices.Equal(pids(ps), pids(after)) {
		t.Errorf("instances were replaced after a late listen failure: %v → %v", pids(ps), pids(after))
	}
	if got := spread(t, fmt.Sprintf("127.0.0.1:%d", port), 10); got["0"]+got["1"] != 10 {
		t.Errorf("after the late failure: %v", got)
	}
}

// reload of a config file applies the file's new settings (env, instance count), as PM2 does,
// rolling, without a failed request.
func TestClusterReloadConfigAppliesIt(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	dir := t.TempDir()
	e2e.WriteApp(t, dir, "ver.js", `
const http = require('http');
http.createServer((req, res) => { res.setHeader('X-Worker', process.env.VER); res.end('v\n'); })
  .listen(Number(process.env.PORT));
`)
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "ecosystem.config.js")
	write := func(ver string, n int) {
		os.WriteFile(cfg, []byte(fmt.Sprintf(`module.exports = { apps: [{ name: 'ver', script: './ver.js', instances: %d, exec_mode: 'cluster', listen_timeout: `+e2e.ListenTimeout+`, env: { PORT: %d, VER: %q } }] };`, n, port, ver)), 0o644)
	}
	write("one", 2)
	h.OK("start", cfg, "-s")
	h.WaitOnline("ver", 2)
	write("two", 3)
	res := e2e.LoadDuring(t, addr, func() { h.OK("reload", cfg, "--update-env", "-s") })
	t.Logf("reload of a changed config under load: %d served, %d failed, %d refused; answers %v",
		res.OK.Load(), res.Failed.Load(), res.Refused.Load(), res.WorkerCounts())
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 {
		t.Errorf("want 0 failed and 0 refused, got %d and %d", res.Failed.Load(), res.Refused.Load())
	}
	h.WaitOnline("ver", 3)
	if got := spread(t, addr, 30); got["two"] != 30 {
		t.Errorf("after reloading the changed config, answers %v; want every one from VER=two", got)
	}
	// By name, --update-env takes this shell's environment, under what the config set: VER stays.
	if r := h.RunEnv([]string{"VER=shell"}, "reload", "ver", "--update-env", "-s"); r.Code != 0 {
		t.Fatalf("reload ver --update-env: exit %d, %q", r.Code, r.Err)
	}
	if got := spread(t, addr, 30); got["two"] != 30 {
		t.Errorf("after reload --update-env, answers %v; want every one from the config's VER=two", got)
	}
}

// Keep-alive clients that never retry: a reload closes their connections only between requests
// (Connection: close on a response, or after a second idle), so none of their requests fails.
func TestClusterReloadKeepAliveFailsNothing(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "hello.js", e2e.HelloJS)
	addr := h.StartCluster(app, 2)
	h.WaitOnline("hello", 2)
	res := e2e.LoadWith(t, httpload.KeepAliveLoop, addr, func() {
		for range 3 {
			h.OK("reload", "hello", "-s")
		}
	})
	t.Logf("3 reloads under keep-alive load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 || res.OK.Load() == 0 {
		t.Errorf("want 0 failed and 0 refused keep-alive requests, got %d and %d (%d served)", res.Failed.Load(), res.Refused.Load(), res.OK.Load())
	}
}

// The Go example, through pkg/worker.Serve, drains as the Node preload does: three reloads
// under keep-alive clients that never retry fail none of their requests. (With the example's
// old code, a bare http.Server shut down on SIGINT, 59 to 67 requests failed in three runs.)
func TestGoReloadKeepAliveFailsNothing(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "hello-go")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/cluster-go").CombinedOutput(); err != nil {
		t.Fatalf("build the example: %v\n%s", err, out)
	}
	h := newHarness(t)
	port := e2e.FreePort(t)
	h.OK("start", bin, "-i", "2", "--port", strconv.Itoa(port), "--wait-ready", "--listen-timeout", e2e.ListenTimeout, "-s")
	h.WaitOnline("hello-go", 2)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	res := e2e.LoadWith(t, httpload.KeepAliveLoop, addr, func() {
		for range 3 {
			h.OK("reload", "hello-go", "-s")
		}
	})
	t.Logf("3 reloads of the Go example under keep-alive load: %d served, %d failed, %d refused", res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 || res.OK.Load() == 0 {
		t.Errorf("want 0 failed and 0 refused keep-alive requests, got %d and %d (%d served)", res.Failed.Load(), res.Refused.Load(), res.OK.Load())
	}
}

// A Node whose version tend does not know (a wrapper that says v99) gets the preload shim,
// and tend.log says so.
func TestClusterUnknownNodeFallsBackToShim(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	node, _ := exec.LookPath("node")
	h := newHarness(t)
	dir := t.TempDir()
	fake := filepath.Join(dir, "bin", "node")
	os.MkdirAll(filepath.Dir(fake), 0o755)
	script := e2e.WriteApp(t, dir, "node.sh", "#!/bin/sh\n[ \"$1\" = --version ] && { echo v99.0.0; exit 0; }\nexec "+node+" \"$@\"\n")
	e2e.InstallExec(t, script, fake)
	app := e2e.WriteApp(t, dir, "hello.js", e2e.HelloJS)
	port := e2e.FreePort(t)
	if r := h.RunEnv([]string{"PORT=" + strconv.Itoa(port)}, "start", app, "-i", "2", "--interpreter", fake, "--listen-timeout", e2e.ListenTimeout, "-s"); r.Code != 0 {
		t.Fatalf("start: exit %d: %s", r.Code, r.Err)
	}
	h.WaitOnline("hello", 2)
	if got := spread(t, fmt.Sprintf("127.0.0.1:%d", port), 40); got["0"] == 0 || got["1"] == 0 {
		t.Errorf("40 connections through the shim: %v", got)
	}
	b, _ := os.ReadFile(filepath.Join(h.Home, "tend.log"))
	if !strings.Contains(string(b), "cluster protocol is not one tend knows") || !strings.Contains(string(b), "v99.0.0") {
		t.Errorf("tend.log does not say why the shim is used:\n%s", b)
	}
}

// An upgraded connection (a WebSocket) is the app's to end: a reload's drain does not cut it;
// it lasts until the app ends it or drain_timeout passes.
func TestClusterReloadKeepsUpgradedConnections(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	app := e2e.WriteApp(t, t.TempDir(), "ws.js", `
const http = require('http');
const srv = http.createServer((req, res) => res.end('plain\n'));
srv.on('upgrade', (req, socket) => {
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
  socket.on('data', (d) => socket.write(d));
});
srv.listen(Number(process.env.PORT));
`)
	port := e2e.FreePort(t)
	if r := h.RunEnv([]string{"PORT=" + strconv.Itoa(port)}, "start", app, "-i", "1", "--drain-timeout", "3000", "--listen-timeout", e2e.ListenTimeout, "-s"); r.Code != 0 {
		t.Fatalf("start: exit %d: %s", r.Code, r.Err)
	}
	old := h.WaitOnline("ws", 1)[0].Pid
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"))
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "101") {
		t.Fatalf("upgrade: %q %v", buf[:n], err)
	}
	cmd := newCmd(h, "reload", "ws", "-s")
	startBackground(t, cmd)
	begin := time.Now()
	ping := func() {
		t.Helper()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatalf("the upgraded connection was cut %s into the reload: %v", time.Since(begin), err)
		}
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("the upgraded connection was cut %s into the reload: %q %v", time.Since(begin), buf[:n], err)
		}
	}
	// Through the reload until the replacement has taken over and the old process drains…
	h.WaitFor("ws", 15*time.Second, "the replacement online", func(p proc) bool {
		ping()
		return p.Pid != old && p.Pid != 0 && p.Pm2Env.Status == "online"
	})
	// …and for a while of its drain_timeout (3 s): pings paced 100 ms apart, not a wait.
	for drained := time.Now(); time.Since(drained) < 700*time.Millisecond; time.Sleep(100 * time.Millisecond) {
		ping()
	}
}

// Two scales at once must not hand a slot that is still draining to a new instance.
func TestClusterConcurrentScales(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	port := e2e.FreePort(t)
	// Each process keeps serving half a second after its stop signal: the scale down below is
	// still draining the two lowest ids (slots 0 and 1, PM2's choice) when the scale up comes.
	h.OK("start", e2e.AppBin, "--name", "web", "-i", "4", "--port", strconv.Itoa(port), "-s", "--", "-serve", "-ready-after", "10ms", "-drain-delay", "500ms")
	var leaving []int
	for _, p := range h.WaitOnline("web", 4) {
		if *p.Pm2Env.NodeAppInstance < 2 {
			leaving = append(leaving, p.Pid)
		}
	}
	down := newCmd(h, "scale", "web", "2", "-s")
	startBackground(t, down)
	e2e.WaitUntil(t, 10*time.Second, "the scale down begun", func() bool { return len(h.Instances("web")) == 2 })
	h.OK("scale", "web", "4", "-s")
	if err := waitCmd(down, 20*time.Second); err != nil {
		t.Fatalf("scale 2: %v", err)
	}
	h.WaitOnline("web", 4)
	// Slots 0 and 1 are closed once their processes are gone (scale returns after that): a
	// close that hit a new instance's socket shows below.
	e2e.WaitUntil(t, 10*time.Second, "the scaled-down processes gone", func() bool {
		return !slices.ContainsFunc(leaving, e2e.PidAlive)
	})
	got := spread(t, fmt.Sprintf("127.0.0.1:%d", port), 200)
	// The second scale may not reuse slots 0 and 1 while they drain: its instances take 4 and 5.
	t.Logf("200 connections after scale 4 → 2 → 4 at once: %v", got)
	if len(got) != 4 {
		t.Errorf("want 4 instances serving after concurrent scales, got %v", got)
	}
	for w, n := range got {
		if n == 0 {
			t.Errorf("instance %s gets no connection after concurrent scales: %v", w, got)
		}
	}
}
