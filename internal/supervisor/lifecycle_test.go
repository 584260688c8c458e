package supervisor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/state"
)

func TestStartForkAppIsOnlineWithPM2Env(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("api")); err != nil {
		t.Fatal(err)
	}
	p := f.next()
	i := f.info("api")[0]
	if i.Status != Online || i.Pid != p.Pid() || i.StartTick != p.StartTick() {
		t.Fatalf("info %+v, want online with pid %d", i, p.Pid())
	}
	for k, v := range map[string]string{"pm_id": "0", "name": "api", "NODE_APP_INSTANCE": "0", "FROM_SPEC": "1", "TEND_HOME": f.home} {
		if got := p.Env(k); got != v {
			t.Errorf("env %s = %q, want %q", k, got, v)
		}
	}
	if p.Cmd.IPC || p.Cmd.App != "api" || p.Cmd.Instance != 0 {
		t.Errorf("cmd %+v", p.Cmd)
	}
	// Its output reaches its log file, through the dup the pump borrowed from the holder.
	if err := p.Print(1, "hello out\n"); err != nil {
		t.Fatal(err)
	}
	_ = p.Print(2, "hello err\n")
	f.eventually("log lines", func() bool {
		return strings.Contains(readFile(t, logPath(f, "api-out.log")), "hello out") &&
			strings.Contains(readFile(t, logPath(f, "api-error.log")), "hello err")
	})
	// The holder lists what the run owns.
	kinds := map[proc.Kind]bool{}
	for _, e := range p.Holder().Manifest() {
		kinds[e.Kind] = true
		if e.App != "api" || e.Pid != p.Pid() || e.Fd < 0 {
			t.Errorf("manifest entry %+v", e)
		}
	}
	if !kinds[proc.KindStdin] || !kinds[proc.KindStdout] || !kinds[proc.KindStderr] || kinds[proc.KindIPC] {
		t.Errorf("manifest kinds %v", kinds)
	}
	// Starting it again restarts it (PM2).
	if _, err := f.sup.Do(ActStart, "api"); err != nil {
		t.Fatal(err)
	}
	q := f.next()
	if !p.Exited() || q.Pid() == p.Pid() || f.info("api")[0].History.Restarts != 1 {
		t.Fatalf("start of a running app: old exited %v, restarts %d", p.Exited(), f.info("api")[0].History.Restarts)
	}
	if len(p.Holder().Manifest()) != 0 {
		t.Errorf("the old run's holder still owns %v", p.Holder().Manifest())
	}
}

func TestCrashRestartsThenStopCodeStops(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("w", func(s *config.AppSpec) { s.StopExitCodes = []int{7} })); err != nil {
		t.Fatal(err)
	}
	p := f.next()
	p.ExitWith(1, 0)
	q := f.next() // restarted after the crash-loop floor
	f.eventually("online again", f.status("w", Online))
	i := f.info("w")[0]
	if i.History.Restarts != 1 || *i.ExitCode != 1 || i.Pid != q.Pid() {
		t.Fatalf("after a crash: %+v", i)
	}
	q.ExitWith(7, 0)
	f.eventually("stopped", f.status("w", Stopped))
	if f.info("w")[0].Pid != 0 {
		t.Fatal("a stopped instance has no pid")
	}
	if !strings.Contains(f.log.String(), "exit_code=7") {
		t.Errorf("the exit is not in the log")
	}
}

func TestCrashLoopEndsErroredAndStartRetries(t *testing.T) {
	f := newFixture(t, false)
	s := spec("loop", func(s *config.AppSpec) { s.MinUptime = time.Hour; s.MaxRestarts = 2 })
	if err := f.sup.Start(s); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f.next().ExitWith(1, 0)
	}
	f.eventually("errored", f.status("loop", Errored))
	i := f.info("loop")[0]
	if i.History.Unstable != 2 {
		t.Fatalf("unstable %d, want 2", i.History.Unstable)
	}
	if !strings.Contains(f.log.String(), "too many unstable restarts") {
		t.Error("giving up is not logged")
	}
	// A start gives it a fresh chance.
	if _, err := f.sup.Do(ActStart, "loop"); err != nil {
		t.Fatal(err)
	}
	f.next()
	if i := f.info("loop")[0]; i.Status != Online || i.History.Unstable != 0 {
		t.Fatalf("after start: %+v", i)
	}
}

func TestNoAutorestartStays(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("once", func(s *config.AppSpec) { s.Autorestart = false })); err != nil {
		t.Fatal(err)
	}
	f.next().ExitWith(0, 0)
	f.eventually("stopped", f.status("once", Stopped))
}

func TestRestartDelayWaits(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("slow", func(s *config.AppSpec) { s.RestartDelay = time.Hour })); err != nil {
		t.Fatal(err)
	}
	f.next().ExitWith(2, 0)
	f.eventually("waiting restart", f.status("slow", Waiting))
	// A stop during the delay cancels the restart.
	if _, err := f.sup.Do(ActStop, "slow"); err != nil {
		t.Fatal(err)
	}
	if i := f.info("slow")[0]; i.Status != Stopped {
		t.Fatalf("status %s", i.Status)
	}
}

func TestStopSendsKillSignalAndEscalates(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("a", func(s *config.AppSpec) { s.KillSignal = "SIGTERM" })); err != nil {
		t.Fatal(err)
	}
	p := f.next()
	if _, err := f.sup.Do(ActStop, "a"); err != nil {
		t.Fatal(err)
	}
	if sig := <-p.Signals; sig != unix.SIGTERM {
		t.Fatalf("got %v, want SIGTERM", sig)
	}
	if i := f.info("a")[0]; i.Status != Stopped || i.Pid != 0 {
		t.Fatalf("after stop: %+v", i)
	}
	// One that ignores it gets SIGKILL once kill_timeout passes, and the log says so.
	if _, err := f.sup.Do(ActStart, "a"); err != nil {
		t.Fatal(err)
	}
	q := f.next()
	q.IgnoreSignals()
	t0 := time.Now()
	if _, err := f.sup.Do(ActStop, "a"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("stopped after %v, before kill_timeout", d)
	}
	if e := q.Exit(); e.Signal != unix.SIGKILL {
		t.Fatalf("exit %+v", e)
	}
	if !strings.Contains(f.log.String(), "kill_timeout passed; sending SIGKILL") {
		t.Error("the escalation is not logged")
	}
}

func TestSignalStdinAndErrors(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("s")); err != nil {
		t.Fatal(err)
	}
	p := f.next()
	if err := f.sup.Signal("s", unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if sig := <-p.Signals; sig != unix.SIGUSR1 {
		t.Fatalf("got %v", sig)
	}
	if _, err := f.sup.Stdin("s", "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sup.Do(ActStop, "s"); err != nil {
		t.Fatal(err)
	}
	if err := f.sup.Signal("s", unix.SIGUSR1); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("signal to a stopped app: %v", err)
	}
	if _, err := f.sup.Stdin("s", "hi"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stdin of a stopped app: %v", err)
	}
	if _, err := f.sup.Select("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("select of an unknown app: %v", err)
	}
	if _, err := f.sup.Select("42"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("select of an unknown id: %v", err)
	}
}

func TestSpawnFailureIsErrored(t *testing.T) {
	f := newFixture(t, false)
	f.fake.FailNext(errors.New("exec /bin/app: no such file"))
	err := f.sup.Start(spec("bad"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
	if i := f.info("bad")[0]; i.Status != Errored {
		t.Fatalf("status %s", i.Status)
	}
}

func TestWaitReady(t *testing.T) {
	f := newFixture(t, false)
	s := spec("r", func(s *config.AppSpec) { s.WaitReady = true; s.NodeIPC = true; s.ListenTimeout = time.Hour })
	done := f.startAsync(s)
	p := f.next()
	if !p.Cmd.IPC || p.Env("NODE_CHANNEL_FD") != "3" {
		t.Fatalf("no IPC channel: %+v", p.Cmd)
	}
	f.eventually("launching", f.status("r", Launching))
	if err := p.Send("ready"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	if f.info("r")[0].Status != Online {
		t.Fatal("not online after ready")
	}

	// A missed listen_timeout fails the start but leaves it running, marked online (PM2).
	s = spec("late", func(s *config.AppSpec) { s.WaitReady = true; s.NodeIPC = true; s.ListenTimeout = 50 * time.Millisecond })
	err := f.sup.Start(s)
	if err == nil || !strings.Contains(err.Error(), "did not send 'ready'") {
		t.Fatalf("err = %v", err)
	}
	f.next()
	f.eventually("online", f.status("late", Online))

	// An exit before ready fails the start.
	done = f.startAsync(spec("dies", func(s *config.AppSpec) {
		s.WaitReady = true
		s.NodeIPC = true
		s.ListenTimeout = time.Hour
		s.Autorestart = false
	}))
	f.next().ExitWith(3, 0)
	if err := recv(t, done); err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("err = %v", err)
	}
}

func TestStopBeforeReadyFailsTheStart(t *testing.T) {
	f := newFixture(t, false)
	done := f.startAsync(spec("r", func(s *config.AppSpec) { s.WaitReady = true; s.NodeIPC = true; s.ListenTimeout = time.Hour }))
	f.next()
	f.eventually("launching", f.status("r", Launching))
	if _, err := f.sup.Do(ActStop, "r"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done); err == nil || !strings.Contains(err.Error(), "stopped before it was ready") {
		t.Fatalf("err = %v", err)
	}
}

func TestScaleAndDelete(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("m", func(s *config.AppSpec) { s.Instances = 2 })); err != nil {
		t.Fatal(err)
	}
	f.next()
	f.next()
	if _, err := f.sup.Scale("m", 4); err != nil {
		t.Fatal(err)
	}
	if n := len(f.info("m")); n != 4 || f.fake.Running() != 4 {
		t.Fatalf("%d instances, %d running", n, f.fake.Running())
	}
	// Separate log files per instance once there are several (PM2's -<pm_id>).
	if i := f.info("m")[3]; !strings.HasSuffix(i.OutLog, "m-out-3.log") {
		t.Fatalf("log path %s", i.OutLog)
	}
	if _, err := f.sup.Scale("m", 1); err != nil {
		t.Fatal(err)
	}
	if n := len(f.info("m")); n != 1 || f.fake.Running() != 1 {
		t.Fatalf("%d instances, %d running", n, f.fake.Running())
	}
	if _, err := f.sup.Scale("m", 0); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("scale to 0: %v", err)
	}
	if _, err := f.sup.Scale("nope", 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("scale of an unknown app: %v", err)
	}
	if _, err := f.sup.Do(ActDelete, "m"); err != nil {
		t.Fatal(err)
	}
	if f.sup.Has("m") || len(f.sup.List()) != 0 || f.fake.Running() != 0 {
		t.Fatal("delete left something")
	}
}

func TestRestartAllAndNamespaces(t *testing.T) {
	f := newFixture(t, false)
	for _, n := range []string{"a", "b"} {
		if err := f.sup.Start(spec(n, func(s *config.AppSpec) { s.Namespace = "ns" })); err != nil {
			t.Fatal(err)
		}
		f.next()
	}
	ins, err := f.sup.Do(ActRestart, "ns")
	if err != nil || len(ins) != 2 {
		t.Fatalf("restart ns: %d, %v", len(ins), err)
	}
	f.next()
	f.next()
	for _, i := range f.sup.List() {
		if i.History.Restarts != 1 || i.Status != Online {
			t.Fatalf("%+v", i)
		}
	}
	snap := f.sup.Snapshot()
	if len(snap.Apps) != 2 || snap.NextID != 2 || snap.Apps[0].Instances[0].Pid == 0 {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestShutdownRefusesStarts(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("a")); err != nil {
		t.Fatal(err)
	}
	f.next()
	if err := f.sup.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := f.sup.Start(spec("b")); !errors.Is(err, ErrClosing) {
		t.Fatalf("start after shutdown: %v", err)
	}
	if _, err := f.sup.Reload("all"); !errors.Is(err, ErrClosing) {
		t.Fatalf("reload after shutdown: %v", err)
	}
}

func TestRestoreStopsLeftoversAndStartsAgain(t *testing.T) {
	f := newFixture(t, false)
	f.fake.Live(555, 9)
	sp := spec("old")
	f.sup.Restore(state.Registry{NextID: 3, Apps: []state.App{{Spec: sp, Instances: []state.Instance{
		{ID: 2, Status: string(Online), Pid: 555, StartTick: 9, Restarts: 4, Unstable: 1},
	}}}}, Kept{})
	p := f.next()
	f.eventually("online", f.status("old", Online))
	adopted := f.fake.Adopted()
	if len(adopted) != 1 || !adopted[0].Exited() {
		t.Fatalf("the leftover must be stopped: %v", adopted)
	}
	i := f.info("old")[0]
	if i.ID != 2 || i.Pid != p.Pid() || i.History.Restarts != 4 || i.History.Unstable != 1 {
		t.Fatalf("%+v", i)
	}
	if !strings.Contains(f.log.String(), "stopping a process left by the previous daemon") {
		t.Error("not logged")
	}
}

func TestRestoreAdoptsLiveProcess(t *testing.T) {
	f := newFixture(t, true)
	f.fake.Live(555, 9)
	f.sup.Restore(state.Registry{NextID: 2, WorkerID: 40, Apps: []state.App{
		{Spec: spec("kept"), Instances: []state.Instance{{ID: 0, Status: string(Online), Pid: 555, StartTick: 9}}},
		{Spec: spec("gone"), Instances: []state.Instance{{ID: 1, Status: string(Online), Pid: 556, StartTick: 9}}},
		{Spec: spec("off"), Instances: []state.Instance{{ID: 2, Status: string(Stopped)}}},
		{Spec: spec("bad"), Instances: []state.Instance{{ID: 3, Status: string(Errored)}}},
	}}, Kept{})
	f.eventually("adopted", func() bool { return f.info("kept")[0].Pid == 555 })
	if w := f.sup.Snapshot().WorkerID; w != 40 {
		t.Fatalf("worker ids start again at %d, not after the adopted ones' 40", w)
	}
	if i := f.info("kept")[0]; i.Status != Online {
		t.Fatalf("%+v", i)
	}
	// The one whose process is gone is started again; the others keep their status.
	started := f.next()
	f.eventually("gone restarted", f.status("gone", Online))
	if f.info("gone")[0].Pid != started.Pid() || f.info("off")[0].Status != Stopped || f.info("bad")[0].Status != Errored {
		t.Fatal("restore changed what it should not")
	}
	// The adopted process's exit goes through the restart policy.
	f.fake.Adopted()[0].ExitWith(1, 0)
	q := f.next()
	f.eventually("restarted", func() bool { return f.info("kept")[0].Pid == q.Pid() })
}

func TestInvalidTransitionIsAnError(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("a", func(s *config.AppSpec) { s.Autorestart = false })); err != nil {
		t.Fatal(err)
	}
	f.next().ExitWith(0, 0)
	f.eventually("stopped", f.status("a", Stopped))
	// Adopting into a stopped instance is not in the table: the caller gets the error, the
	// log says it, and nothing changes.
	f.fake.Live(777, 1)
	pr, err := f.fake.Adopt(777, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ins, _ := f.sup.Select("a")
	err = ins[0].do(command{kind: cmdAdopt, proc: pr})
	if !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("err = %v, want an invalid transition", err)
	}
	if i := f.info("a")[0]; i.Status != Stopped || i.Pid != 0 {
		t.Fatalf("the refused transition changed the instance: %+v", i)
	}
	if !strings.Contains(f.log.String(), "invalid state transition: adopt from \\\"stopped\\\"") {
		t.Errorf("not in the log:\n%s", f.log.String())
	}
	pr.(interface{ ExitWith(int, unix.Signal) }).ExitWith(0, 0)
}

// A bug that panics in the middle of a command is recovered: the caller is told, tend.log has
// the stack, and the instance and the others go on.
func TestPanicInACommandIsAnErrorAndNothingElse(t *testing.T) {
	f := newFixture(t, false)
	if err := f.sup.Start(spec("other")); err != nil {
		t.Fatal(err)
	}
	f.next()
	f.fake.PanicNext("injected")
	err := f.sup.Start(spec("buggy"))
	if err == nil || !strings.Contains(err.Error(), `internal error in app "buggy"`) || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("err = %v", err)
	}
	if log := f.log.String(); !strings.Contains(log, "panic in instance") || !strings.Contains(log, "goroutine") {
		t.Fatalf("no panic with its stack in the log:\n%s", log)
	}
	// The process the panic interrupted was never handed over; a start now works.
	if _, err := f.sup.Do(ActStart, "buggy"); err != nil {
		t.Fatal(err)
	}
	f.eventually("online", f.status("buggy", Online))
	if f.info("other")[0].Status != Online {
		t.Fatal("another app was touched")
	}
}
