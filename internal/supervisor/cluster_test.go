package supervisor

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/proc/proctest"
	"github.com/tend-sh/tend/internal/testutil"
)

// nodeCluster is a cluster app that speaks Node's cluster protocol (as Deno does: no Node
// version to ask, no preload).
func nodeCluster(name string, n int) config.AppSpec {
	return spec(name, func(s *config.AppSpec) {
		s.ExecMode, s.NodeIPC, s.InterpreterLabel, s.Instances = config.ClusterMode, true, "deno", n
		s.ListenTimeout = time.Hour
		s.DrainTimeout = 2 * time.Second
	})
}

// listen plays a Node worker's listen(port): queryServer, the daemon's handle, 'listening'.
func listen(t *testing.T, p *proctest.Proc, port int) json.RawMessage {
	t.Helper()
	q := map[string]any{"cmd": "NODE_CLUSTER", "act": "queryServer", "seq": 0, "address": "127.0.0.1", "port": port, "addressType": 4, "index": 0, "data": nil}
	if err := p.Send(q); err != nil {
		t.Fatal(err)
	}
	reply := expectMessage(t, p, "NODE_HANDLE")
	if err := p.Send(map[string]any{"cmd": "NODE_CLUSTER", "act": "listening", "seq": 1, "address": "127.0.0.1", "port": port, "addressType": 4}); err != nil {
		t.Fatal(err)
	}
	return reply
}

func expectMessage(t *testing.T, p *proctest.Proc, substr string) json.RawMessage {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m := <-p.Messages:
			if strings.Contains(string(m), substr) {
				return m
			}
		case <-deadline:
			t.Fatalf("no message with %s", substr)
		}
	}
}

func dial(t *testing.T, port int) error {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", itoa(port)), time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestNodeClusterSharesAPortAndReloads(t *testing.T) {
	f := newFixture(t, false)
	port := testutil.FreePort(t)
	done := f.startAsync(nodeCluster("web", 2))
	ps := []*proctest.Proc{f.next(), f.next()}
	if ps[0].Cmd.Instance != 0 {
		ps[0], ps[1] = ps[1], ps[0] // by instance: a rolling reload goes in that order
	}
	for _, p := range ps {
		if p.Env("NODE_UNIQUE_ID") == "" || p.Env("NODE_CHANNEL_FD") != "3" {
			t.Fatalf("a cluster worker needs NODE_UNIQUE_ID and the channel: %v", p.Cmd.Env)
		}
		if r := listen(t, p, port); !strings.Contains(string(r), `"errno":0`) {
			t.Fatalf("reply %s", r)
		}
	}
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	if err := dial(t, port); err != nil {
		t.Fatalf("the daemon's socket does not take connections: %v", err)
	}
	if got := f.info("web")[0].Listening; len(got) != 1 || got[0] != port {
		t.Fatalf("listening %v", got)
	}
	// The holder of a cluster instance lists its socket beside its pipes and channel.
	m := ps[0].Holder().Manifest()
	kinds := map[proc.Kind]int{}
	for _, e := range m {
		kinds[e.Kind]++
	}
	if kinds[proc.KindSocket] != 1 || kinds[proc.KindIPC] != 1 || kinds[proc.KindStdout] != 1 {
		t.Fatalf("manifest %+v", m)
	}
	js, _ := json.MarshalIndent(m, "", "  ")
	t.Logf("manifest of a cluster instance:\n%s", js)

	// A rolling reload: the replacement listens on the same slot, the old one is told to
	// disconnect and drains, then gets its signal.
	reloaded := make(chan error, 1)
	go func() { _, err := f.sup.Reload("web"); reloaded <- err }()
	for i := range ps {
		nw := f.next()
		listen(t, nw, port)
		expectMessage(t, ps[i], `"act":"disconnect"`)
		ps[i].CloseIPC() // Node's worker closes its channel once its servers are closed
		if i == 0 {
			if err := dial(t, port); err != nil {
				t.Fatalf("refused during the reload: %v", err)
			}
		}
		ps[i] = nw
	}
	if err := recv(t, reloaded); err != nil {
		t.Fatal(err)
	}
	for _, i := range f.info("web") {
		if i.Status != Online || i.History.Restarts != 1 {
			t.Fatalf("after reload: %+v", i)
		}
	}
	// An instance that crashes leaves its socket: connections queue for its replacement.
	ps[1].ExitWith(1, 0)
	if err := dial(t, port); err != nil {
		t.Fatalf("refused after a crash: %v", err)
	}
	listen(t, f.next(), port)
	f.eventually("online", f.status("web", Online))

	// Stopped, the app holds no socket: connections are refused, not left waiting.
	if _, err := f.sup.Do(ActStop, "web"); err != nil {
		t.Fatal(err)
	}
	if err := dial(t, port); err == nil {
		t.Fatal("a stopped app still takes connections")
	}
}

func TestNodeClusterPortInUseErrors(t *testing.T) {
	f := newFixture(t, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	done := f.startAsync(nodeCluster("busy", 1))
	p := f.next()
	q := map[string]any{"cmd": "NODE_CLUSTER", "act": "queryServer", "seq": 0, "address": "127.0.0.1", "port": port, "addressType": 4, "index": 0}
	if err := p.Send(q); err != nil {
		t.Fatal(err)
	}
	if r := expectMessage(t, p, `"errno"`); !strings.Contains(string(r), `"errno":-98`) {
		t.Fatalf("reply %s, want EADDRINUSE", r)
	}
	if err := recv(t, done); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("err = %v", err)
	}
	f.eventually("errored", f.status("busy", Errored))
	// A unix path or UDP is refused with ENOTSUP.
	done = f.startAsync(nodeCluster("udp", 1))
	p = f.next()
	_ = p.Send(map[string]any{"cmd": "NODE_CLUSTER", "act": "queryServer", "seq": 0, "address": "127.0.0.1", "port": port, "addressType": "udp4", "index": 0})
	if r := expectMessage(t, p, `"errno"`); !strings.Contains(string(r), `"errno":-95`) {
		t.Fatalf("reply %s, want ENOTSUP", r)
	}
	_ = p.Send("ready")
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
}

// A worker that exits on its errno at once may be seen gone before the instance hears of the
// failed listen: it still ends errored with the listen's reason, not restarted as a crash.
func TestExitOnListenErrorIsNotACrash(t *testing.T) {
	f := newFixture(t, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	for range 20 {
		done := f.startAsync(nodeCluster("quick", 1))
		p := f.next()
		q := map[string]any{"cmd": "NODE_CLUSTER", "act": "queryServer", "seq": 0, "address": "127.0.0.1", "port": port, "addressType": 4, "index": 0}
		if err := p.Send(q); err != nil {
			t.Fatal(err)
		}
		expectMessage(t, p, `"errno":-98`)
		p.ExitWith(1, 0)
		if err := recv(t, done); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("err = %v", err)
		}
		f.eventually("errored", f.status("quick", Errored))
		if _, err := f.sup.Do(ActDelete, "quick"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInheritedSocketsReloadAndMessages(t *testing.T) {
	f := newFixture(t, false)
	port := testutil.FreePort(t)
	s := spec("go", func(s *config.AppSpec) {
		s.ExecMode, s.Instances = config.ClusterMode, 2
		s.Ports = []config.Listen{{Host: "127.0.0.1", Port: port}}
		s.MinUptime = time.Hour
	})
	done := f.startAsync(s)
	a, b := f.next(), f.next()
	if a.Cmd.Instance != 0 {
		a, b = b, a
	}
	for _, p := range []*proctest.Proc{a, b} {
		if len(p.Cmd.Listen) != 1 || p.Env("LISTEN_FDS") != "1" || p.Env("TEND_IPC_FD") != "4" || p.Cmd.Argv[1] != proc.ExecHelperArg {
			t.Fatalf("an inherited-socket worker: %+v", p.Cmd)
		}
		_ = p.Send("ready")
	}
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	if err := dial(t, port); err != nil {
		t.Fatal(err)
	}
	// process:msg between instances goes through the daemon, marked with the sender.
	if err := a.Send(map[string]any{"type": "process:msg", "data": map[string]int{"n": 1}, "id": 1}); err != nil {
		t.Fatal(err)
	}
	if m := expectMessage(t, b, "process:msg"); !strings.Contains(string(m), `"from":0`) {
		t.Fatalf("routed %s", m)
	}
	// tend msg: to every instance; a reserved cmd is refused.
	if _, err := f.sup.Message("go", json.RawMessage(`{"hello":true}`)); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, a, "hello")
	if _, err := f.sup.Message("go", json.RawMessage(`{"cmd":"NODE_CLUSTER"}`)); err == nil {
		t.Fatal("a NODE_ message was sent")
	}
	// Reload: ready on 'ready' (min_uptime is long), then the old one stops.
	reloaded := make(chan error, 1)
	go func() { _, err := f.sup.Reload("go"); reloaded <- err }()
	for _, old := range []*proctest.Proc{a, b} {
		nw := f.next()
		_ = nw.Send("ready")
		<-old.Done()
	}
	if err := recv(t, reloaded); err != nil {
		t.Fatal(err)
	}
	if f.fake.Running() != 2 {
		t.Fatalf("%d running", f.fake.Running())
	}
}
