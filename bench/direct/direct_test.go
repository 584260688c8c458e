package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asLauncherEnv makes the test binary run the launcher's main instead of the tests: the test
// starts the launcher as a separate process (it must be one, to be signalled and to parent the
// workers) without a `go build` step.
const asLauncherEnv = "TEND_BENCH_DIRECT_AS_LAUNCHER"

// markerEnv tags the processes of one test run. The workers inherit it, so a leak check finds
// this run's workers and not those of another run of the same app on the machine.
const markerEnv = "TEND_BENCH_DIRECT_TEST"

func TestMain(m *testing.M) {
	if os.Getenv(asLauncherEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// launcher is a running launcher process started by startLauncher.
type launcher struct {
	cmd    *exec.Cmd
	port   int
	marker string
	stderr *bytes.Buffer
}

// startLauncher runs the launcher with two hello-fd.js workers and waits for "ready".
func startLauncher(t *testing.T) *launcher {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found:", err)
	}
	app, err := filepath.Abs("../apps/hello-fd.js")
	if err != nil {
		t.Fatal(err)
	}
	l := &launcher{marker: t.Name() + "-" + strconv.Itoa(os.Getpid()), stderr: new(bytes.Buffer)}
	l.cmd = exec.Command(os.Args[0], "-workers", "2", "-port", "0", "-ready-timeout", "4s", "--", node, app)
	l.cmd.Env = append(os.Environ(), asLauncherEnv+"=1", markerEnv+"="+l.marker)
	l.cmd.Stderr = l.stderr
	stdout, err := l.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Normally the test has stopped it already; this is for a test that failed half-way.
		l.cmd.Process.Kill()
		l.cmd.Wait()
		if t.Failed() {
			t.Logf("launcher stderr:\n%s", l.stderr)
		}
	})

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(5 * time.Second)
	for _, want := range []string{"port=", "ready"} {
		select {
		case line, ok := <-lines:
			if !ok || !strings.HasPrefix(line, want) {
				t.Fatalf("launcher stdout: got %q (open %v), want a line starting with %q", line, ok, want)
			}
			if want == "port=" {
				if l.port, err = strconv.Atoi(strings.TrimPrefix(line, want)); err != nil || l.port == 0 {
					t.Fatalf("launcher stdout: bad port line %q", line)
				}
			}
		case <-timeout:
			t.Fatalf("launcher printed no %q line within 5s", want)
		}
	}
	go io.Copy(io.Discard, stdout) // nothing else is expected; never let the pipe fill
	return l
}

// workerPIDs lists the live processes of this launcher's run that run app: their cmdline
// contains the app's path and their environment this run's marker. Zombies have neither. The
// launcher, whose arguments name the app too, is left out.
func (l *launcher) workerPIDs(t *testing.T) []int {
	t.Helper()
	app, _ := filepath.Abs("../apps/hello-fd.js")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == l.cmd.Process.Pid {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cmdline, []byte(app)) {
			continue
		}
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(environ, []byte{0}) {
			if string(kv) == markerEnv+"="+l.marker {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// waitNoWorkers fails the test unless every worker is gone within d.
func (l *launcher) waitNoWorkers(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		pids := l.workerPIDs(t)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("workers left behind after %v: pids %v", d, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDirectServesFromEveryWorkerAndStopsClean(t *testing.T) {
	l := startLauncher(t)
	if pids := l.workerPIDs(t); len(pids) != 2 {
		t.Fatalf("found %d worker processes (%v), want 2", len(pids), pids)
	}

	// A new connection per request, so the kernel's SO_REUSEPORT hashing picks a worker
	// each time. With no keep-alive, net/http has no reused connection to silently retry on,
	// so every failure counts.
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   2 * time.Second,
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", l.port)
	const requests = 200
	perWorker := map[string]int{}
	var failures []string
	for i := 0; i < requests; i++ {
		resp, err := client.Get(url)
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != "hello\n" {
			failures = append(failures, fmt.Sprintf("status %d, body %q, err %v", resp.StatusCode, body, err))
			continue
		}
		perWorker[resp.Header.Get("X-Worker")]++
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed, first: %s", len(failures), requests, failures[0])
	}
	if perWorker["0"] == 0 || perWorker["1"] == 0 || len(perWorker) != 2 {
		t.Errorf("answers per X-Worker = %v, want both workers 0 and 1 and no other", perWorker)
	}

	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- l.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("launcher exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("launcher still running 4s after SIGTERM")
	}
	// The launcher reaps its workers before it exits, so none may be left at all.
	l.waitNoWorkers(t, 0)
}

// Without a chance to stop its workers, the launcher relies on PR_SET_PDEATHSIG.
func TestDirectWorkersDieWithKilledLauncher(t *testing.T) {
	l := startLauncher(t)
	if pids := l.workerPIDs(t); len(pids) != 2 {
		t.Fatalf("found %d worker processes (%v), want 2", len(pids), pids)
	}
	if err := l.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	l.cmd.Wait()
	// The kernel sends SIGKILL at once; the time allows for init to reap the orphans.
	l.waitNoWorkers(t, 2*time.Second)
}

func TestFindServerInode(t *testing.T) {
	// The shape of /proc/net/tcp: a listener on 127.0.0.1:8080 (0x1F90), a connection from port
	// 50000 (0xC350) still in its accept queue (inode 0), one from 50001 (0xC351) accepted, and
	// the client side of the first, which must not be mistaken for the server side.
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 5151 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 0 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:C351 01 00000000:00000000 00:00000000 00000000  1000        0 6161 1 0000000000000000 20 4 30 10 -1
`
	tests := []struct {
		clientPort int
		want       uint64
	}{
		{50000, 0},
		{50001, 6161},
		{50002, 0}, // not there (yet)
	}
	for _, tt := range tests {
		got, err := findServerInode(strings.NewReader(table), 8080, tt.clientPort)
		if err != nil || got != tt.want {
			t.Errorf("findServerInode(8080, %d) = %d, %v; want %d", tt.clientPort, got, err, tt.want)
		}
	}
}
