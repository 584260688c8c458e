package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// withLogs gives the fixture's api instances log files in dir, with lines in them.
func (e *testEnv) withLogs(t *testing.T) (out0, err0, out1 string) {
	t.Helper()
	dir := t.TempDir()
	out0, err0, out1 = filepath.Join(dir, "api-out-0.log"), filepath.Join(dir, "api-err-0.log"), filepath.Join(dir, "api-out-1.log")
	os.WriteFile(out0, []byte("a1\na2\na3\n"), 0o600)
	os.WriteFile(err0, []byte("e1\n"), 0o600)
	os.WriteFile(out1, []byte("b1\n"), 0o600)
	e.c.procs[0].Pm2Env.PmOutLogPath, e.c.procs[0].Pm2Env.PmErrLogPath = out0, err0
	e.c.procs[1].Pm2Env.PmOutLogPath, e.c.procs[1].Pm2Env.PmErrLogPath = out1, "/dev/null"
	return out0, err0, out1
}

func TestLogsNoStream(t *testing.T) {
	e := newTestEnv(t)
	out0, err0, out1 := e.withLogs(t)
	if code := e.run("logs", "api", "--nostream", "--lines", "2"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	want := out0 + " last 2 lines:\n0|api | a2\n0|api | a3\n" + err0 + " last 2 lines:\n0|api | e1\n" + out1 + " last 2 lines:\n1|api | b1\n"
	if e.out.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", e.out, want)
	}

	e = newTestEnv(t)
	e.withLogs(t)
	e.f.IO.SetStdoutTTY(true)
	e.run("logs", "0", "--nostream", "--raw", "--err")
	if e.out.String() != "e1\n" {
		t.Errorf("--raw --err: %q", e.out)
	}

	e = newTestEnv(t)
	e.withLogs(t)
	e.f.IO.SetStdoutTTY(true)
	e.run("logs", "0", "--nostream", "--lines", "1")
	if !strings.Contains(e.out.String(), "\x1b[31m0|api | e1\x1b[0m\n") || !strings.Contains(e.out.String(), "\n0|api | a3\n") {
		t.Errorf("error lines red on a terminal: %q", e.out)
	}

	e = newTestEnv(t)
	e.withLogs(t)
	e.run("logs", "--nostream", "--lines", "0", "--out")
	if e.out.String() != "" {
		t.Errorf("--lines 0: %q", e.out)
	}

	e = newTestEnv(t)
	e.c.procs[2].Pm2Env.PmOutLogPath = filepath.Join(t.TempDir(), "dir")
	os.Mkdir(e.c.procs[2].Pm2Env.PmOutLogPath, 0o700)
	if code := e.run("logs", "worker", "--nostream"); code != ExitFailure || !strings.HasPrefix(e.errOut.String(), "tend: read ") {
		t.Errorf("unreadable log: exit %d, %q", code, e.errOut)
	}
	e = newTestEnv(t)
	if code := e.run("logs", "ghost"); code != ExitNotFound {
		t.Errorf("logs ghost: exit %d", code)
	}
}

func TestLogsFollow(t *testing.T) {
	e := newTestEnv(t)
	out0, _, _ := e.withLogs(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := NewCmdLogs(e.f, func(o *LogsOptions) error {
		o.Context = func() (context.Context, context.CancelFunc) { return ctx, cancel }
		o.FollowEvery, o.RescanEvery = 2*time.Millisecond, 5*time.Millisecond
		return logsRun(o)
	})
	done := make(chan error, 1)
	go func() { done <- parse(t, cmd, "api", "--lines", "0", "--raw") }()
	// A line written to a followed file, and the first line of an app that appears once logs
	// has read the list.
	deadline := time.Now().Add(10 * time.Second)
	for e.c.Calls() == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	late := filepath.Join(t.TempDir(), "late.log")
	os.WriteFile(late, []byte("late1\n"), 0o600)
	e.c.mu.Lock()
	p := e.c.procs[0]
	p.PmID, p.Pm2Env.PmOutLogPath, p.Pm2Env.PmErrLogPath = 3, late, ""
	e.c.procs = append(e.c.procs[:2:2], e.c.procs[2], p)
	e.c.mu.Unlock()
	for !strings.Contains(e.out.String(), "late1\n") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	f, _ := os.OpenFile(out0, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("a4\n")
	f.Close()
	for !strings.Contains(e.out.String(), "a4\n") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := e.out.String(); !strings.Contains(got, "late1\n") || !strings.Contains(got, "a4\n") || strings.Contains(got, "a3") {
		t.Fatalf("followed %q", got)
	}
}

func TestFlush(t *testing.T) {
	e := newTestEnv(t)
	out0, err0, out1 := e.withLogs(t)
	daemonLog := filepath.Join(t.TempDir(), "tend.log")
	os.WriteFile(daemonLog, []byte("x\n"), 0o600)
	cmd := NewCmdFlush(e.f, func(o *FlushOptions) error {
		if o.DaemonLog != "/home/u/.tend/tend.log" {
			t.Errorf("daemon log %q", o.DaemonLog)
		}
		o.DaemonLog = daemonLog
		return flushRun(o)
	})
	if err := parse(t, cmd); err != nil {
		t.Fatal(err)
	}
	paths := []string{out0, err0, out1, daemonLog}
	want := ""
	for _, p := range slices.Sorted(slices.Values(paths)) {
		want += "flushed " + p + "\n"
	}
	if e.out.String() != want {
		t.Errorf("stdout %q, want %q", e.out, want)
	}
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || st.Size() != 0 {
			t.Errorf("%s not emptied: %v", p, err)
		}
	}

	e = newTestEnv(t)
	e.withLogs(t)
	e.c.procs[1].Pm2Env.PmOutLogPath = filepath.Join(t.TempDir(), "gone.log") // a missing file is not an error
	if code := e.run("flush", "api"); code != 0 || strings.Contains(e.out.String(), "tend.log") || strings.Count(e.out.String(), "flushed") != 3 {
		t.Errorf("flush api: exit %d, %q", code, e.out)
	}
	e = newTestEnv(t)
	bad := filepath.Join(e.file(t, "plain", ""), "x.log")
	e.c.procs[2].Pm2Env.PmOutLogPath = bad
	if code := e.run("flush", "worker"); code != ExitFailure || e.errOut.String() != "tend: flush "+bad+": truncate "+bad+": not a directory\n" {
		t.Errorf("flush unwritable: exit %d, %q", code, e.errOut)
	}
	e = newTestEnv(t)
	if code := e.run("flush", "ghost"); code != ExitNotFound {
		t.Errorf("flush ghost: exit %d", code)
	}
}

// --json and --format print PM2's fields; --timestamp prefixes the time of printing.
func TestLogsStructured(t *testing.T) {
	at := time.Date(2026, 11, 30, 6, 40, 1, 500e6, time.UTC)
	run := func(args ...string) (*testEnv, error) {
		e := newTestEnv(t)
		e.withLogs(t)
		cmd := NewCmdLogs(e.f, func(o *LogsOptions) error {
			o.Now = func() time.Time { return at }
			return logsRun(o)
		})
		return e, parse(t, cmd, args...)
	}
	e, err := run("0", "--nostream", "--lines", "1", "--json")
	want := `{"message":"a3","timestamp":"2026-11-30T06:40:01.500Z","type":"out","process_id":0,"app_name":"api","instance":0}
{"message":"e1","timestamp":"2026-11-30T06:40:01.500Z","type":"err","process_id":0,"app_name":"api","instance":0}
`
	if err != nil || e.out.String() != want {
		t.Errorf("--json: %v\n%s\nwant:\n%s", err, e.out, want)
	}
	e, err = run("0", "--nostream", "--lines", "1", "--out", "--format")
	if want := "timestamp=" + at.Local().Format("2006-01-02-15:04:05-0700") + " app=api id=0 type=out message=a3\n"; err != nil || e.out.String() != want {
		t.Errorf("--format: %v %q, want %q", err, e.out, want)
	}
	e, err = run("0", "--nostream", "--lines", "1", "--err", "--raw", "--timestamp")
	if want := at.Local().Format("2006-01-02-15:04:05") + " e1\n"; err != nil || e.out.String() != want {
		t.Errorf("--timestamp: %v %q, want %q", err, e.out, want)
	}
	e, err = run("0", "--nostream", "--lines", "1", "--err", "--raw", "--timestamp=HH:mm")
	if want := at.Local().Format("15:04") + " e1\n"; err != nil || e.out.String() != want {
		t.Errorf("--timestamp=HH:mm: %v %q, want %q", err, e.out, want)
	}
	if _, err := run("0", "--json", "--format"); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Errorf("--json --format: %v", err)
	}
}
