package test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHomeFilesAndModes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	os.Remove(h.home) // the CLI creates it
	h.ok("start", appBin, "--name", "m", "-s")
	time.Sleep(200 * time.Millisecond) // the registry is written in batches
	for path, want := range map[string]os.FileMode{
		h.home:                                 0o700 | os.ModeDir,
		filepath.Join(h.home, "tend.sock"):     0o600 | os.ModeSocket,
		filepath.Join(h.home, "registry.json"): 0o600,
		filepath.Join(h.home, "tend.log"):      0o600,
		filepath.Join(h.home, "daemon.pid"):    0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() & (os.ModePerm | os.ModeDir | os.ModeSocket); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	data, _ := os.ReadFile(filepath.Join(h.home, "daemon.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	// The daemon runs in a session of its own, detached from our terminal and process group.
	sid, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if f := strings.Fields(string(sid[strings.LastIndexByte(string(sid), ')')+2:])); f[3] != strconv.Itoa(pid) {
		t.Fatalf("daemon pid %d has session %s, want its own", pid, f[3])
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// A socket file nobody listens on, as a crashed daemon leaves it.
	l, err := net.Listen("unix", filepath.Join(h.home, "tend.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	h.ok("ping")
	if log, _ := os.ReadFile(filepath.Join(h.home, "tend.log")); !strings.Contains(string(log), "removing stale socket") {
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
			r := h.run("ping")
			if r.code != 0 {
				t.Errorf("ping %d: %s", i, r.err)
			}
			pids[i] = strings.Fields(r.out + " x x x")[3] // "pong (daemon pid N, ..."
		}()
	}
	wg.Wait()
	for _, p := range pids[1:] {
		if p != pids[0] {
			t.Fatalf("several daemons answered: %v", pids)
		}
	}
	daemons := 0
	for _, pid := range h.marked() {
		if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(cmd), "daemon") {
			daemons++
		}
	}
	if daemons != 1 {
		t.Fatalf("%d daemon processes for one TEND_HOME", daemons)
	}
}
