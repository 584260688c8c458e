package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/httpload"
)

// tickerJS logs one numbered line every 10 ms: a gap, a duplicate or a line out of order in its
// log file is a line lost or replayed.
const tickerJS = `let i = 0; setInterval(() => console.log('tick ' + (i++)), 10);`

// kill -9 of the daemon, ten times in a row, while a Node cluster app, a fork-mode Node app that
// logs and a Python app on inherited sockets serve a load that never retries: the keeper starts
// the next daemon by itself and it adopts everything, so no request fails, no connection is
// refused, no log line is lost or doubled and every pid stays.
func TestDaemonKill9UnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	needNode(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	h := newHarness(t)
	h.expectLogError("keeper: the daemon died")
	dir := t.TempDir()
	nodeAddr := h.startCluster(writeApp(t, dir, "hello.js", helloJS), 2)
	h.ok("start", writeApp(t, dir, "ticker.js", tickerJS), "-s")
	pyPort := freePort(t)
	pyApp, _ := filepath.Abs("../examples/cluster-python/app.py")
	h.ok("start", pyApp, "--name", "py", "--port", strconv.Itoa(pyPort), "--listen-timeout", listenTimeout, "-s")
	pyAddr := fmt.Sprintf("127.0.0.1:%d", pyPort)
	h.waitOnline("hello", 2)
	h.waitOnline("py", 1)
	ticker := h.waitStatus("ticker", "online")
	waitFile(t, ticker.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, "tick 5\n") })
	before := h.jlist()

	ctx, cancel := context.WithCancel(context.Background())
	nodeLoad, waitNode := httpload.Loop(ctx, nodeAddr, 8)
	pyLoad, waitPy := httpload.Loop(ctx, pyAddr, 8)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			waitNode()
			waitPy()
		}
	}
	defer stop()
	served := func() {
		n, p := nodeLoad.OK.Load(), pyLoad.OK.Load()
		poll(15*time.Second, func() bool { return nodeLoad.OK.Load() >= n+loadServed && pyLoad.OK.Load() >= p+loadServed })
	}
	served()
	var backIn []time.Duration
	for range 10 {
		killed := time.Now()
		killDaemon(t, h) // nobody runs a command until the keeper's new daemon has written its pid
		waitFor(t, 10*time.Second, "every app adopted", func() bool { return samePids(before, h.jlist()) })
		backIn = append(backIn, time.Since(killed))
		served()
	}
	stop()

	slices.Sort(backIn)
	t.Logf("10 × kill -9 of the daemon: back with every app in %v (median) to %v (worst); node: %d served, %d failed, %d refused; python: %d served, %d failed, %d refused",
		backIn[len(backIn)/2].Round(time.Millisecond), backIn[len(backIn)-1].Round(time.Millisecond),
		nodeLoad.OK.Load(), nodeLoad.Failed.Load(), nodeLoad.Refused.Load(), pyLoad.OK.Load(), pyLoad.Failed.Load(), pyLoad.Refused.Load())
	for name, res := range map[string]*httpload.Result{"node": nodeLoad, "python": pyLoad} {
		if res.Failed.Load() != 0 || res.Refused.Load() != 0 {
			t.Errorf("%s: %d failed, %d refused; want none", name, res.Failed.Load(), res.Refused.Load())
		}
	}
	if worst := backIn[len(backIn)-1]; worst > time.Second {
		t.Logf("warning: a daemon took %v to come back with every app (the goal is 1 s; this machine may be loaded)", worst)
	}
	after := h.jlist()
	if !samePids(before, after) {
		t.Errorf("pids changed: %v → %v", describePids(before), describePids(after))
	}
	for _, p := range after {
		if p.Pm2Env.RestartTime != 0 {
			t.Errorf("%s (id %d): restart_time %d; the kills restarted no app", p.Name, p.PmID, p.Pm2Env.RestartTime)
		}
	}
	checkTicks(t, ticker.Pm2Env.PmOutLogPath)
}

// checkTicks reads a tickerJS log: every number once, in order, from 0.
func checkTicks(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, l := range lines {
		if l != "tick "+strconv.Itoa(i) {
			t.Fatalf("line %d of %s is %q, want %q (a line lost, doubled or torn)", i+1, path, l, "tick "+strconv.Itoa(i))
		}
	}
	t.Logf("%s: %d lines, every one once and in order", filepath.Base(path), len(lines))
}

// ownBinary makes h run a copy of tend in dir, which the test may replace or remove.
func ownBinary(t *testing.T, h *harness, dir string) {
	t.Helper()
	h.bin = filepath.Join(dir, "tend")
	if b, err := os.ReadFile(tendBin); err != nil || os.WriteFile(h.bin, b, 0o755) != nil {
		t.Fatalf("copy tend: %v", err)
	}
}

// killDaemon kills the daemon with SIGKILL and returns once the keeper's next one has written its
// pid (the dead one's may still answer a moment: nothing is checked before).
func killDaemon(t *testing.T, h *harness) {
	t.Helper()
	old := readPidFile(h, "daemon.pid")
	syscall.Kill(old, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "a new daemon", func() bool {
		pid := readPidFile(h, "daemon.pid")
		return pid != old && pid > 0 && pidAlive(pid)
	})
}

func readPidFile(h *harness, name string) int {
	data, _ := os.ReadFile(filepath.Join(h.home, name))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// samePids reports whether now lists every instance of before, online with the same pid.
func samePids(before, now []proc) bool {
	if len(before) != len(now) {
		return false
	}
	for i := range before {
		if now[i].PmID != before[i].PmID || now[i].Pid != before[i].Pid || now[i].Pm2Env.Status != "online" {
			return false
		}
	}
	return true
}

func describePids(ps []proc) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s/%d=%d(%s)", p.Name, p.PmID, p.Pid, p.Pm2Env.Status))
	}
	return strings.Join(s, " ")
}

// tend update under load, after the binary at tend's path was replaced with mv: the daemon and
// the keeper (whose version differs) run the new binary, with the same keeper pid, and no app,
// request or log line notices.
func TestUpdateUnderLoadKeepsEverything(t *testing.T) {
	t.Parallel()
	needNode(t)
	dir := t.TempDir() // before the harness: removed after its cleanup, which runs h.bin
	h := newHarness(t)
	ownBinary(t, h, dir)
	const v2 = "9.9.9-test"
	next := filepath.Join(dir, "tend-next")
	if out, err := exec.Command("go", "build", "-ldflags", "-X github.com/tend-sh/tend/internal/cli.Version="+v2, "-o", next, "../cmd/tend").CombinedOutput(); err != nil {
		t.Fatalf("build the next tend: %v\n%s", err, out)
	}
	addr := h.startCluster(writeApp(t, dir, "hello.js", helloJS), 2)
	h.ok("start", writeApp(t, dir, "ticker.js", tickerJS), "-s")
	h.waitOnline("hello", 2)
	ticker := h.waitStatus("ticker", "online")
	waitFile(t, ticker.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, "tick 5\n") })
	before := h.jlist()
	keeper, daemon := readPidFile(h, "keeper.pid"), readPidFile(h, "daemon.pid")

	var out string
	res := loadDuring(t, addr, func() {
		if err := os.Rename(next, h.bin); err != nil { // what mv does
			t.Fatal(err)
		}
		out = h.ok("update")
		waitFor(t, 10*time.Second, "every app adopted", func() bool { return samePids(before, h.jlist()) })
	})
	t.Logf("tend update under load: %s; %d served, %d failed, %d refused", strings.TrimSpace(out), res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if !strings.Contains(out, "runs version "+v2) {
		t.Errorf("update said %q; want the new version", out)
	}
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 {
		t.Errorf("%d failed, %d refused; want none", res.Failed.Load(), res.Refused.Load())
	}
	if d := readPidFile(h, "daemon.pid"); d == daemon || !pidAlive(d) {
		t.Errorf("daemon.pid says %d (was %d); want a new, live daemon", d, daemon)
	}
	// The keeper re-executed itself: same pid, the new binary.
	waitFor(t, 10*time.Second, "the keeper on the new binary", func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", keeper))
		return exe == h.bin
	})
	if k := readPidFile(h, "keeper.pid"); k != keeper {
		t.Errorf("keeper.pid says %d, was %d", k, keeper)
	}
	if p := h.ok("ping"); !strings.Contains(p, "version "+v2) {
		t.Errorf("ping after update: %q", p)
	}
	// The keeper still keeps everything: one more daemon crash, and nothing notices.
	h.expectLogError("keeper: the daemon died")
	killDaemon(t, h)
	waitFor(t, 10*time.Second, "every app adopted after a crash", func() bool { return samePids(before, h.jlist()) })
	checkTicks(t, ticker.Pm2Env.PmOutLogPath)
}

// kill -9 of the keeper itself is the one thing that loses the guarantee: the daemon and the
// apps run on, the daemon says the apps will not outlive it now, and tend kill still ends all.
func TestKeeperKilled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.expectLogError("keeper gone")
	h.ok("start", appBin, "--name", "calm", "-s")
	p := h.waitStatus("calm", "online")
	syscall.Kill(readPidFile(h, "keeper.pid"), syscall.SIGKILL)
	waitFile(t, filepath.Join(h.home, "tend.log"), 10*time.Second, func(s string) bool { return strings.Contains(s, "keeper gone") })
	if q, _ := h.get("calm"); q.Pid != p.Pid || q.Pm2Env.Status != "online" {
		t.Fatalf("after the keeper's death: pid %d (was %d), %s", q.Pid, p.Pid, q.Pm2Env.Status)
	}
	if r := h.run("update"); r.code == 0 || !strings.Contains(r.err, "without a keeper") {
		t.Fatalf("update without a keeper: exit %d, %q", r.code, r.err)
	}
}

// An orphan an app left behind belongs to the keeper once the daemon that adopted it died; tend
// kill still stops it (the harness fails the test on any process left).
func TestOrphanOfAdoptedAppIsStopped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.expectLogError("keeper: the daemon died")
	script := writeApp(t, t.TempDir(), "orphans.sh", "(setsid sleep 1001 &)\nwhile true; do sleep 1; done\n")
	h.ok("start", script, "-s")
	waitFor(t, 10*time.Second, "the orphan", func() bool { return len(h.appProcs("sleep\x001001")) == 1 })
	before := h.jlist()
	killDaemon(t, h)
	waitFor(t, 10*time.Second, "the app adopted", func() bool { return samePids(before, h.jlist()) })
	if _, ppid, _ := procStat(h.appProcs("sleep\x001001")[0]); ppid != readPidFile(h, "keeper.pid") {
		t.Fatalf("the orphan's parent is %d, not the keeper", ppid)
	}
}

// floodJS writes numbered lines as fast as its pipe takes them, a few hundred a write, once the
// file $GO exists: 4 million of them (about 40 MB, a few seconds), then it idles.
const floodJS = `let i = 0;
function more() {
  if (i >= 4e6) return setInterval(() => {}, 1e6);
  let s = ''; for (let k = 0; k < 200; k++) s += 'n=' + (i++) + '\n'; process.stdout.write(s, more);
}
const go = () => require('fs').existsSync(process.env.GO) ? more() : setTimeout(go, 5);
go();`

// The daemon killed again and again while it drains a backlog (a few milliseconds after the
// previous one died, an app writing as fast as it can): a pump that took a pipe over consumes
// from it only what it has written, so no line is lost or torn. One killed between a write and
// its consume writes those lines again: duplicates are counted, not refused. (A daemon that
// started the app itself reads a flood as before, consuming what it reads: the flood begins
// after a first kill here, so that every daemon killed has taken the pipe over.)
func TestDaemonKilledWhileDrainingLosesNoLine(t *testing.T) {
	t.Parallel()
	needNode(t)
	h := newHarness(t)
	h.expectLogError("keeper: the daemon died")
	dir := t.TempDir()
	trigger := filepath.Join(dir, "go")
	if r := h.runEnv([]string{"GO=" + trigger}, "start", writeApp(t, dir, "flood.js", floodJS), "-s"); r.code != 0 {
		t.Fatalf("start: %s", r.err)
	}
	p := h.waitStatus("flood", "online")
	killDaemon(t, h)
	waitFor(t, 10*time.Second, "the app adopted", func() bool { q, _ := h.get("flood"); return q.Pid == p.Pid })
	os.WriteFile(trigger, nil, 0o644)
	waitFor(t, 10*time.Second, "a flood under way", func() bool {
		st, err := os.Stat(p.Pm2Env.PmOutLogPath)
		return err == nil && st.Size() > 1<<20
	})
	for range 8 {
		killDaemon(t, h)
		time.Sleep(5 * time.Millisecond) // killed while it drains what piled up: the point here
	}
	waitFor(t, 10*time.Second, "the app adopted", func() bool { q, _ := h.get("flood"); return q.Pid == p.Pid })
	h.ok("stop", "flood", "-s")
	// The log rotates on the way (tend's default 10 MB): the lines are counted across its files.
	next, dups := 0, 0
	sc := bufio.NewScanner(strings.NewReader(logText(t, p.Pm2Env.PmOutLogPath)))
	for i := 0; sc.Scan(); i++ {
		l := sc.Text()
		n, err := strconv.Atoi(strings.TrimPrefix(l, "n="))
		switch {
		case err != nil || !strings.HasPrefix(l, "n="):
			t.Fatalf("line %d is %q: torn", i+1, l)
		case n == next:
			next++
		case n < next:
			dups++ // written again by the next daemon
		default:
			t.Fatalf("line %d is %q, want n=%d: %d lines lost", i+1, l, next, n-next)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("8 kills while draining: %d lines, none lost or torn, %d written twice", next, dups)
}

// A daemon whose binary has gone from its path (`go run` deletes its build) is started again
// by the keeper from its own image.
func TestDaemonRestartsWhenItsBinaryIsGone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() // before the harness: removed after its cleanup
	h := newHarness(t)
	h.expectLogError("keeper: the daemon died")
	ownBinary(t, h, dir)
	h.ok("start", appBin, "--name", "calm", "-s")
	before := h.jlist()
	os.Remove(h.bin)
	h.bin = tendBin // the same version, for the commands below
	killDaemon(t, h)
	waitFor(t, 10*time.Second, "the app adopted by a new daemon", func() bool { return samePids(before, h.jlist()) })
	if log, _ := os.ReadFile(filepath.Join(h.home, "tend.log")); !strings.Contains(string(log), "from the keeper's own image") {
		t.Error("tend.log does not say where the daemon came from")
	}
}
