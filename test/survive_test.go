package test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

// ownBinary makes h run a copy of tend in dir, which the test may replace or remove.
func ownBinary(t *testing.T, h *harness, dir string) {
	t.Helper()
	h.Bin = filepath.Join(dir, "tend")
	e2e.InstallExec(t, e2e.TendBin, h.Bin)
}

// tend update under load, after the binary at tend's path was replaced with mv: the daemon and
// the keeper (whose version differs) run the new binary, with the same keeper pid, and no app,
// request or log line notices.
func TestUpdateUnderLoadKeepsEverything(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	dir := t.TempDir() // before the harness: removed after its cleanup, which runs h.Bin
	h := newHarness(t)
	ownBinary(t, h, dir)
	const v2 = "9.9.9-test"
	next := filepath.Join(dir, "tend-next")
	if out, err := exec.Command("go", "build", "-ldflags", "-X github.com/tend-sh/tend/internal/cli.Version="+v2, "-o", next, "../cmd/tend").CombinedOutput(); err != nil {
		t.Fatalf("build the next tend: %v\n%s", err, out)
	}
	addr := h.StartCluster(e2e.WriteApp(t, dir, "hello.js", e2e.HelloJS), 2)
	h.OK("start", e2e.WriteApp(t, dir, "ticker.js", e2e.TickerJS), "-s")
	h.WaitOnline("hello", 2)
	ticker := h.WaitStatus("ticker", "online")
	e2e.WaitFile(t, ticker.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, "tick 5\n") })
	before := h.Jlist()
	keeper, daemon := h.PidFile("keeper.pid"), h.PidFile("daemon.pid")

	var out string
	res := e2e.LoadDuring(t, addr, func() {
		if err := os.Rename(next, h.Bin); err != nil { // what mv does
			t.Fatal(err)
		}
		out = h.OK("update")
		e2e.WaitUntil(t, 10*time.Second, "every app adopted", func() bool { return e2e.SamePids(before, h.Jlist()) })
	})
	t.Logf("tend update under load: %s; %d served, %d failed, %d refused", strings.TrimSpace(out), res.OK.Load(), res.Failed.Load(), res.Refused.Load())
	if !strings.Contains(out, "runs version "+v2) {
		t.Errorf("update said %q; want the new version", out)
	}
	if res.Failed.Load() != 0 || res.Refused.Load() != 0 {
		t.Errorf("%d failed, %d refused; want none", res.Failed.Load(), res.Refused.Load())
	}
	if d := h.PidFile("daemon.pid"); d == daemon || !e2e.PidAlive(d) {
		t.Errorf("daemon.pid says %d (was %d); want a new, live daemon", d, daemon)
	}
	// The keeper re-executed itself: same pid, the new binary.
	e2e.WaitUntil(t, 10*time.Second, "the keeper on the new binary", func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", keeper))
		return exe == h.Bin
	})
	if k := h.PidFile("keeper.pid"); k != keeper {
		t.Errorf("keeper.pid says %d, was %d", k, keeper)
	}
	if p := h.OK("ping"); !strings.Contains(p, "version "+v2) {
		t.Errorf("ping after update: %q", p)
	}
	// The keeper still keeps everything: one more daemon crash, and nothing notices.
	h.ExpectLogError("keeper: the daemon died")
	h.KillDaemon()
	e2e.WaitUntil(t, 10*time.Second, "every app adopted after a crash", func() bool { return e2e.SamePids(before, h.Jlist()) })
	if n, bad, first, err := e2e.TickFaults(ticker.Pm2Env.PmOutLogPath); err != nil || bad != 0 {
		t.Errorf("ticker's log: %d of its %d lines lost, doubled or torn (%v); first: %s", bad, n, err, first)
	}
}

// kill -9 of the keeper itself is the one thing that loses the guarantee: the daemon and the
// apps run on, the daemon says the apps will not outlive it now, and tend kill still ends all.
func TestKeeperKilled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ExpectLogError("keeper gone")
	h.OK("start", e2e.AppBin, "--name", "calm", "-s")
	p := h.WaitStatus("calm", "online")
	syscall.Kill(h.PidFile("keeper.pid"), syscall.SIGKILL)
	e2e.WaitFile(t, filepath.Join(h.Home, "tend.log"), 10*time.Second, func(s string) bool { return strings.Contains(s, "keeper gone") })
	if q, _ := h.Get("calm"); q.Pid != p.Pid || q.Pm2Env.Status != "online" {
		t.Fatalf("after the keeper's death: pid %d (was %d), %s", q.Pid, p.Pid, q.Pm2Env.Status)
	}
	if r := h.Run("update"); r.Code == 0 || !strings.Contains(r.Err, "without a keeper") {
		t.Fatalf("update without a keeper: exit %d, %q", r.Code, r.Err)
	}
}

// An orphan an app left behind belongs to the keeper once the daemon that adopted it died; tend
// kill still stops it (the harness fails the test on any process left).
func TestOrphanOfAdoptedAppIsStopped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ExpectLogError("keeper: the daemon died")
	script := e2e.WriteApp(t, t.TempDir(), "orphans.sh", "(setsid sleep 1001 &)\nwhile true; do sleep 1; done\n")
	h.OK("start", script, "-s")
	e2e.WaitUntil(t, 10*time.Second, "the orphan", func() bool { return len(h.appProcs("sleep\x001001")) == 1 })
	before := h.Jlist()
	h.KillDaemon()
	e2e.WaitUntil(t, 10*time.Second, "the app adopted", func() bool { return e2e.SamePids(before, h.Jlist()) })
	if _, ppid, _ := e2e.ProcStat(h.appProcs("sleep\x001001")[0]); ppid != h.PidFile("keeper.pid") {
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
	e2e.NeedNode(t)
	h := newHarness(t)
	h.ExpectLogError("keeper: the daemon died")
	dir := t.TempDir()
	trigger := filepath.Join(dir, "go")
	if r := h.RunEnv([]string{"GO=" + trigger}, "start", e2e.WriteApp(t, dir, "flood.js", floodJS), "-s"); r.Code != 0 {
		t.Fatalf("start: %s", r.Err)
	}
	p := h.WaitStatus("flood", "online")
	h.KillDaemon()
	e2e.WaitUntil(t, 10*time.Second, "the app adopted", func() bool { q, _ := h.Get("flood"); return q.Pid == p.Pid })
	os.WriteFile(trigger, nil, 0o644)
	e2e.WaitUntil(t, 10*time.Second, "a flood under way", func() bool {
		st, err := os.Stat(p.Pm2Env.PmOutLogPath)
		return err == nil && st.Size() > 1<<20
	})
	for range 8 {
		h.KillDaemon()
		time.Sleep(5 * time.Millisecond) // killed while it drains what piled up: the point here
	}
	e2e.WaitUntil(t, 10*time.Second, "the app adopted", func() bool { q, _ := h.Get("flood"); return q.Pid == p.Pid })
	h.OK("stop", "flood", "-s")
	// The log rotates on the way (tend's default 10 MB): the lines are counted across its files.
	next, dups := 0, 0
	sc := bufio.NewScanner(strings.NewReader(e2e.LogText(t, p.Pm2Env.PmOutLogPath)))
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
	h.ExpectLogError("keeper: the daemon died")
	ownBinary(t, h, dir)
	h.OK("start", e2e.AppBin, "--name", "calm", "-s")
	before := h.Jlist()
	os.Remove(h.Bin)
	h.Bin = e2e.TendBin // the same version, for the commands below
	h.KillDaemon()
	e2e.WaitUntil(t, 10*time.Second, "the app adopted by a new daemon", func() bool { return e2e.SamePids(before, h.Jlist()) })
	if log, _ := os.ReadFile(filepath.Join(h.Home, "tend.log")); !strings.Contains(string(log), "from the keeper's own image") {
		t.Error("tend.log does not say where the daemon came from")
	}
}
