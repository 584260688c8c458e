package test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tend-sh/tend/test/e2e"
)

func TestHomeFilesAndModes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	os.Remove(h.Home) // the CLI creates it
	h.OK("start", e2e.AppBin, "--name", "m", "-s")
	h.WaitRegistry(map[string]string{"m": "online"}) // written in batches, a moment after the start
	for path, want := range map[string]os.FileMode{
		h.Home:                                 0o700 | os.ModeDir,
		filepath.Join(h.Home, "tend.sock"):     0o600 | os.ModeSocket,
		filepath.Join(h.Home, "registry.json"): 0o600,
		filepath.Join(h.Home, "tend.log"):      0o600,
		filepath.Join(h.Home, "daemon.pid"):    0o600,
		filepath.Join(h.Home, "keeper.pid"):    0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() & (os.ModePerm | os.ModeDir | os.ModeSocket); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	// The keeper runs in a session of its own, detached from our terminal and process group,
	// and the daemon in the keeper's, as its child.
	data, _ := os.ReadFile(filepath.Join(h.Home, "keeper.pid"))
	keeper, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	data, _ = os.ReadFile(filepath.Join(h.Home, "daemon.pid"))
	daemon, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	for _, pid := range []int{keeper, daemon} {
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		if f[3] != strconv.Itoa(keeper) {
			t.Fatalf("pid %d has session %s, want the keeper's own (%d)", pid, f[3], keeper)
		}
		if pid == daemon && f[1] != strconv.Itoa(keeper) {
			t.Fatalf("the daemon's parent is %s, want the keeper %d", f[1], keeper)
		}
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// A socket file nobody listens on, as a crashed daemon leaves it.
	l, err := net.Listen("unix", filepath.Join(h.Home, "tend.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	h.OK("ping")
	if log, _ := os.ReadFile(filepath.Join(h.Home, "tend.log")); !strings.Contains(string(log), "removing stale socket") {
		t.Fatalf("tend.log should say the stale socket was replaced:\n%s", log)
	}
}

func TestConcurrentFirstUseStartsOneDaemon(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var wg sync.WaitGroup
	pids := make([]string, 10)
	for i := range pids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.Run("ping")
			if r.Code != 0 {
				t.Errorf("ping %d: %s", i, r.Err)
			}
			pids[i] = strings.Fields(r.Out + " x x x")[3] // "pong (daemon pid N, ..."
		}()
	}
	wg.Wait()
	for _, p := range pids[1:] {
		if p != pids[0] {
			t.Fatalf("several daemons answered: %v", pids)
		}
	}
	daemons, keepers := 0, 0
	for _, pid := range h.Marked() {
		cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		switch {
		case strings.Contains(string(cmd), "--child"):
			daemons++
		case strings.Contains(string(cmd), "daemon"):
			keepers++
		}
	}
	if daemons != 1 || keepers != 1 {
		t.Fatalf("%d daemons and %d keepers for one TEND_HOME", daemons, keepers)
	}
}

// The harness's check of tend.log: which lines fail a test.
func TestLogCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		line     string
		expected []string
		bad      bool
	}{
		{`time=2026-11-29T21:20:57.492Z level=INFO msg=started app=hello instance=1 pid=22529 cmd="/tmp/TestPanicInRequest/app"`, nil, false},
		{`time=2026-11-29T21:20:57.492Z level=WARN msg="drain_timeout passed with requests still open" pid=1`, nil, false},
		{`time=2026-11-29T21:20:57.492Z level=ERROR msg="listen failed" app=clash instance=0 err="port 1 is already in use"`, nil, true},
		{`time=2026-11-29T21:20:57.492Z level=ERROR msg="listen failed" app=clash instance=0 err="port 1 is already in use"`, []string{"already in use"}, false},
		{`time=2026-11-29T21:20:57.492Z level=ERROR msg="listen failed" app=clash instance=0 err="port 1 is already in use"`, []string{"reload failed"}, true},
		{`time=2026-11-29T21:20:57.492Z level=ERROR msg="panic in request" route=/v1/debug/panic panic="test panic"`, nil, true},
		{`time=2026-11-29T21:20:57.492Z level=WARN msg="state machine" err="invalid transition stopped → stopping"`, nil, true},
		{`time=2026-11-29T21:20:57.492Z level=INFO msg="recovered" panic=boom`, nil, true},
		{`panic: runtime error: index out of range [3] with length 3`, nil, true},
		{`fatal error: concurrent map writes`, nil, true},
		{`goroutine 17 [running]:`, nil, true},
	} {
		if got := len(e2e.UnexpectedLines(tt.line, tt.expected)) > 0; got != tt.bad {
			t.Errorf("%q with %q expected: flagged %v, want %v", tt.line, tt.expected, got, tt.bad)
		}
	}
}
