package keeper

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Upgrade: the daemon asks the keeper to re-execute itself (here into this test binary again,
// which TestMain sends to Resume since TEND_KEEPER_RESUME is set). The keeper must keep its pid,
// its lock, every record's fds, its child the daemon and the daemon's channel.

// keptFds lists the keeper's fds that an upgrade must keep (pipes, sockets, its lock) or must
// not leak (the memfd it passes its state in); not files its Go runtime or the test's Ready
// open and close as they please.
func keptFds(pid int) []string {
	out := slices.DeleteFunc(fdLinks(pid), func(l string) bool {
		return !strings.HasPrefix(l, "pipe:") && !strings.HasPrefix(l, "socket:") && !strings.HasPrefix(l, "/memfd:") && !strings.HasSuffix(l, "/keeper.lock")
	})
	slices.Sort(out)
	return out
}

// upgradedKeeper starts a keeper whose first daemon puts the test's pipe as k, asks for an
// upgrade, then on "put2" puts it again as k2; it returns once the keeper has re-executed itself
// and checked that its fds are the same.
func upgradedKeeper(t *testing.T, script2 string) (k *keeperProc, w *os.File, daemon1 int) {
	t.Helper()
	_, w, pipeEnv := testPipeEnv(t)
	k = startKeeper(t, t.TempDir(), "hello+serving+put+mark-ready+await-up+upgrade+await-put2+put2+mark-put2+block;"+script2, pipeEnv)
	daemon1 = k.pidIn(t, "daemon.1")
	waitFor(t, "daemon 1 ready", func() bool { return exists(k.path("ready.1")) })
	waitFor(t, "the keeper to hold the pipe", func() bool { return holds(t, k.pid, w) == 1 })
	before := keptFds(k.pid)
	sockets := slices.DeleteFunc(slices.Clone(before), func(l string) bool { return !strings.HasPrefix(l, "socket:") })
	if len(sockets) != 1 || !strings.HasSuffix(before[0], "/keeper.lock") {
		t.Fatalf("the keeper's fds: %q; want its lock and one channel", before)
	}

	if err := os.WriteFile(k.path("up"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the keeper to resume", func() bool {
		b, _ := os.ReadFile(k.out)
		return strings.Contains(string(b), `msg="keeper: re-executed"`)
	})
	// Same pid, a new image: its initial environment is the one reexec gave it.
	if env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", k.pid)); !strings.Contains(string(env), EnvResume+"=") {
		t.Fatalf("the keeper %d did not re-execute itself", k.pid)
	}
	if after := keptFds(k.pid); !slices.Equal(before, after) {
		t.Errorf("the keeper's fds before the upgrade:\n%q\nafter:\n%q", before, after)
	}
	return k, w, daemon1
}

// After an upgrade the keeper still serves the same daemon on the same channel (a put reaches
// it), still holds the lock (a second keeper is refused), and when the daemon is killed hands
// the next one every record, put before the upgrade and after.
func TestUpgradeKeepsEverything(t *testing.T) {
	t.Parallel()
	k, w, daemon1 := upgradedKeeper(t, "await-go+hello+mark-ready+block")
	select {
	case <-k.done:
		t.Fatal("the keeper exited")
	default:
	}
	if err := os.WriteFile(k.path("put2"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resumed keeper to take the put", func() bool { return holds(t, k.pid, w) == 2 })

	if out, code := runKeeper(t, k.home, "hello+serving+block"); code != 1 || !strings.Contains(out, "a tend keeper already runs") {
		t.Fatalf("a second keeper after the upgrade exited %d: %s", code, out)
	}

	if err := syscall.Kill(daemon1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a second daemon", func() bool { return exists(k.path("daemon.2")) })
	if err := os.WriteFile(k.path("go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemon 2 ready", func() bool { return exists(k.path("ready.2")) })
	r := k.report(t, 2)
	var keys []string
	for _, rec := range r.Records {
		keys = append(keys, fmt.Sprintf("%s:%s:%d", rec.Key, rec.Info, rec.Fds))
	}
	if want := []string{`k:{"app":"k"}:1`, `k2:{"app":"k2"}:1`}; !slices.Equal(keys, want) || r.KeeperPid != k.pid {
		t.Fatalf("records %q from keeper %d; want %q from %d", keys, r.KeeperPid, want, k.pid)
	}
}

// A keeper that re-executed itself removes keeper.pid when it stops (Run's defer died with the
// old image; Resume has its own).
func TestUpgradeThenStopRemovesPid(t *testing.T) {
	t.Parallel()
	k, _, _ := upgradedKeeper(t, "")
	if err := syscall.Kill(k.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := k.wait(t); code != 0 || !exists(k.path("term.1")) {
		t.Fatalf("the keeper exited %d; the daemon told: %v", code, exists(k.path("term.1")))
	}
	if exists(k.path("keeper.pid")) {
		t.Fatal("keeper.pid left behind by a keeper that stopped")
	}
}

// No daemon a resumed keeper starts inherits TEND_KEEPER_RESUME (nor, from it, the apps):
// Options.Env is built from os.Environ() before Resume unsets it, as the CLI's keeperRun does, so
// startDaemon strips it. A tend started by an app would else try to resume from that fd.
func TestUpgradeDaemonEnv(t *testing.T) {
	t.Parallel()
	k, _, daemon1 := upgradedKeeper(t, "hello+mark-ready+block")
	if err := syscall.Kill(daemon1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemon 2 ready", func() bool { return exists(k.path("ready.2")) })
	if r := k.report(t, 2); len(r.Env) != 0 {
		t.Fatalf("the daemon inherited %q", r.Env)
	}
}

// No message the daemon sends right after "upgrade" is lost: serve stops reading while the keeper
// re-executes (a message read then would die with the old image, its fds with it). Here the
// keeper holds 1000 records, so reexec takes a while, and 200 puts follow the upgrade: the
// resumed keeper holds 1200.
func TestUpgradeLosesNoMessage(t *testing.T) {
	t.Parallel()
	_, w, pipeEnv := testPipeEnv(t)
	k := startKeeper(t, t.TempDir(), "hello+serving+putmany-1000+upgrade+putmany-200+mark-put+block", pipeEnv)
	waitFor(t, "the puts", func() bool { return exists(k.path("put.1")) })
	waitFor(t, "the keeper to resume", func() bool {
		b, _ := os.ReadFile(k.out)
		return strings.Contains(string(b), `msg="keeper: re-executed"`)
	})
	n := 0
	defer func() { t.Logf("the keeper holds %d copies", n) }()
	waitFor(t, "the resumed keeper to hold 1200 copies of the pipe", func() bool { n = holds(t, k.pid, w); return n == 1200 })
}

// Resume reads what it needs before it serves the daemon's channel, so a daemon that puts right
// after the upgrade races with nothing. This test can fail only under -race.
func TestResumeNoDataRace(t *testing.T) {
	t.Parallel()
	_, w, pipeEnv := testPipeEnv(t)
	k := startKeeper(t, t.TempDir(), "hello+serving+upgrade+await-resumed+put+block", pipeEnv)
	waitFor(t, "the keeper to resume", func() bool {
		b, _ := os.ReadFile(k.out)
		return strings.Contains(string(b), `msg="keeper: re-executed"`)
	})
	if err := os.WriteFile(k.path("resumed"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resumed keeper to take the put", func() bool { return holds(t, k.pid, w) == 1 })
	// The fd is in at recvmsg, before handle writes the map: give the race detector a moment to
	// report (it writes as it detects); checkOutput reads the report at cleanup.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(k.out); strings.Contains(string(b), "DATA RACE") {
			break
		}
	}
}
