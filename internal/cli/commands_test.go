package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/errdefs"
)

var (
	errNoApp       = &client.Error{Status: 404, Kind: errdefs.KindNotFound, Msg: `no app named "nope" (see tend ls)`}
	errBadSpec     = &client.Error{Status: 400, Kind: errdefs.KindInvalid, Msg: `app name "x" appears twice; names must be unique`}
	errFailed      = &client.Error{Status: 422, Kind: errdefs.KindFailed, Msg: `app "api" (id 0) is not running`}
	errUnreachable = fmt.Errorf("%w: cannot reach the daemon at /h/tend.sock: connection refused", errdefs.ErrUnreachable)
)

const describeAPI = `Describing process with id 0 - name api
  status              online
  name                api
  namespace           default
  id                  0
  pid                 100
  restarts            0
  unstable restarts   0
  uptime              0
  last exit code      -
  script path         
  script args         null
  interpreter         
  interpreter args    null
  exec cwd            
  exec mode           fork_mode
  instance            0
  out log path        
  error log path      
  autorestart         false
  kill signal         
  kill timeout        0 ms
  max restarts        0
  min uptime          0 ms
  cpu                 1.5%
  memory              42.0mb
  created at          CREATED
  processes           3 (cpu and memory are the whole tree's)
  max memory restart  300.0mb (1 replacements so far)
  readiness           once started
  recent exits (newest first):
    EXIT2  memory limit after 1m0s
    EXIT1  exit code 1 after 1.5s
  custom metrics:
    Heap Size  10.5 MiB
    queue      3 jobs
  env (what differs from this shell's):
    name       api
    namespace  default
    pm_id      0
`

// Each command run against the fake: exact stdout, stderr and exit code, and what it asked.
func TestCommands(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		setup  func(c *fakeClient)
		code   int
		stdout string
		stderr string
		calls  string
	}{
		{name: "ls", args: []string{"ls"}, stdout: fixtureTable, calls: "List"},
		{name: "ls ignores --silent", args: []string{"ls", "-s"}, stdout: fixtureTable, calls: "List"},
		{name: "ls alias", args: []string{"ps"}, stdout: fixtureTable, calls: "List"},
		{name: "ls empty", args: []string{"ls"}, setup: func(c *fakeClient) { c.procs = nil }, calls: "List",
			stdout: "┌────┬──────┬──────┬─────┬────────┬───┬────────┬─────┬─────┐\n│ id │ name │ mode │ pid │ status │ ↺ │ uptime │ cpu │ mem │\n├────┼──────┼──────┼─────┼────────┼───┼────────┼─────┼─────┤\n└────┴──────┴──────┴─────┴────────┴───┴────────┴─────┴─────┘\n"},
		{name: "jlist passes bytes through", args: []string{"jlist"}, setup: func(c *fakeClient) { c.raw = []byte("[{\"pm_id\":7,\"x\":\"\xff\"}]\n") },
			stdout: "[{\"pm_id\":7,\"x\":\"\xff\"}]\n", calls: "JlistRaw"},
		{name: "jlist unreachable", args: []string{"jlist"}, setup: func(c *fakeClient) { c.errs["JlistRaw"] = errUnreachable },
			code: ExitUnreachable, stderr: "tend: daemon unreachable: cannot reach the daemon at /h/tend.sock: connection refused\n", calls: "JlistRaw"},
		{name: "ls unreachable", args: []string{"ls"}, setup: func(c *fakeClient) { c.errs["List"] = errUnreachable },
			code: ExitUnreachable, stderr: "tend: daemon unreachable: cannot reach the daemon at /h/tend.sock: connection refused\n", calls: "List"},
		{name: "describe ghost", args: []string{"describe", "ghost"}, code: ExitNotFound, stderr: "tend: no app named \"ghost\" (see tend ls)\n", calls: "List"},
		{name: "describe missing id", args: []string{"describe", "7"}, code: ExitNotFound, stderr: "tend: no process with id 7 (see tend ls)\n", calls: "List"},
		{name: "stop", args: []string{"stop", "api"}, stdout: fixtureTable, calls: "Action stop api; List"},
		{name: "stop silent", args: []string{"stop", "-s", "api", "worker"}, calls: "Action stop api; Action stop worker"},
		{name: "delete alias", args: []string{"del", "all", "--silent"}, calls: "Action delete all"},
		{name: "restart", args: []string{"restart", "1", "-s"}, calls: "Action restart 1"},
		{name: "reload", args: []string{"reload", "api", "-s"}, calls: "Action reload api"},
		{name: "stop not found", args: []string{"stop", "nope"}, setup: func(c *fakeClient) { c.errs["Action stop nope"] = errNoApp },
			code: ExitNotFound, stderr: "tend: no app named \"nope\" (see tend ls)\n", calls: "Action stop nope"},
		{name: "stop invalid", args: []string{"stop", "x"}, setup: func(c *fakeClient) { c.errs["Action"] = errBadSpec },
			code: ExitUsage, stderr: "tend: app name \"x\" appears twice; names must be unique\n", calls: "Action stop x"},
		{name: "stop failed", args: []string{"stop", "api"}, setup: func(c *fakeClient) { c.errs["Action"] = errFailed },
			code: ExitFailure, stderr: "tend: app \"api\" (id 0) is not running\n", calls: "Action stop api"},
		{name: "stop two failures", args: []string{"stop", "nope", "api"}, setup: func(c *fakeClient) {
			c.errs["Action stop nope"] = errNoApp
			c.errs["Action stop api"] = errFailed
		}, code: ExitNotFound, stderr: "tend: no app named \"nope\" (see tend ls); app \"api\" (id 0) is not running\n", calls: "Action stop nope; Action stop api"},
		{name: "stop table fails", args: []string{"stop", "api"}, setup: func(c *fakeClient) { c.errs["List"] = errors.New("bad answer from daemon") },
			code: ExitFailure, stderr: "tend: bad answer from daemon\n", calls: "Action stop api; List"},
		{name: "pid", args: []string{"pid"}, stdout: "100\n101\n0\n", calls: "List"},
		{name: "pid app", args: []string{"pid", "api"}, stdout: "100\n101\n", calls: "List"},
		{name: "pid namespace", args: []string{"pid", "jobs"}, stdout: "0\n", calls: "List"},
		{name: "pid empty selector", args: []string{"pid", ""}, code: ExitNotFound, stderr: "tend: no app named \"\" (see tend ls)\n", calls: "List"},
		{name: "ping", args: []string{"ping"}, stdout: "pong (daemon pid 42, version 1.2.3, home /h)\n", calls: "Ping"},
		{name: "ping unreachable", args: []string{"ping"}, setup: func(c *fakeClient) { c.errs["Ping"] = errUnreachable },
			code: ExitUnreachable, stderr: "tend: daemon unreachable: cannot reach the daemon at /h/tend.sock: connection refused\n", calls: "Ping"},
		{name: "kill", args: []string{"kill"}, stdout: "daemon stopped, every app deleted\n", calls: "Kill"},
		{name: "kill no daemon", args: []string{"kill"}, setup: func(c *fakeClient) { c.running = false }, stdout: "no tend daemon is running for /home/u/.tend\n"},
		{name: "kill fails", args: []string{"kill"}, setup: func(c *fakeClient) { c.errs["Kill"] = errors.New("some apps could not be stopped") },
			code: ExitFailure, stderr: "tend: some apps could not be stopped\n", calls: "Kill"},
		{name: "sendSignal", args: []string{"sendSignal", "SIGUSR2", "api"}, stdout: "sent SIGUSR2 to api\n", calls: "Signal api SIGUSR2"},
		{name: "signal alias by number", args: []string{"signal", "10", "0"}, stdout: "sent 10 to 0\n", calls: "Signal 0 10"},
		{name: "sendSignal not found", args: []string{"sendSignal", "SIGUSR2", "nope"}, setup: func(c *fakeClient) { c.errs["Signal"] = errNoApp },
			code: ExitNotFound, stderr: "tend: no app named \"nope\" (see tend ls)\n", calls: "Signal nope SIGUSR2"},
		{name: "msg", args: []string{"msg", "api", `{"a":1}`}, stdout: "message sent to 2 instance(s) of api\n", calls: `Message api {"a":1}`},
		{name: "msg fails", args: []string{"msg", "api", `"hi"`}, setup: func(c *fakeClient) { c.errs["Message"] = errFailed },
			code: ExitFailure, stderr: "tend: app \"api\" (id 0) is not running\n", calls: `Message api "hi"`},
		{name: "send", args: []string{"send", "api", "hello", "world"}, stdout: "line written to the stdin of 2 instance(s) of api\n", calls: "Stdin api hello world"},
		{name: "send fails", args: []string{"send", "nope", "x"}, setup: func(c *fakeClient) { c.errs["Stdin"] = errNoApp },
			code: ExitNotFound, stderr: "tend: no app named \"nope\" (see tend ls)\n", calls: "Stdin nope x"},
		{name: "scale", args: []string{"scale", "api", "4"}, stdout: fixtureTable, calls: "Scale api 4; List"},
		{name: "scale up", args: []string{"scale", "-s", "api", "+1"}, calls: "List; Scale api 3"},
		{name: "scale down", args: []string{"scale", "api", "-1", "--silent"}, calls: "List; Scale api 1"},
		{name: "scale silent false", args: []string{"scale", "-s", "api", "2", "--silent=false"}, stdout: fixtureTable, calls: "Scale api 2; List"},
		{name: "scale after --", args: []string{"scale", "-s", "--", "api", "-1"}, calls: "List; Scale api 1"},
		{name: "scale to zero", args: []string{"scale", "api", "-2"}, code: ExitUsage, calls: "List",
			stderr: "tend: scale api to 0: an app keeps at least 1 instance; to stop it, use tend stop api\n"},
		{name: "scale ghost", args: []string{"scale", "ghost", "+1"}, code: ExitNotFound, stderr: "tend: no app named \"ghost\" (see tend ls)\n", calls: "List"},
		{name: "scale list fails", args: []string{"scale", "api", "+1"}, setup: func(c *fakeClient) { c.errs["List"] = errUnreachable },
			code: ExitUnreachable, stderr: "tend: daemon unreachable: cannot reach the daemon at /h/tend.sock: connection refused\n", calls: "List"},
		{name: "scale refused", args: []string{"scale", "api", "99"}, setup: func(c *fakeClient) {
			c.errs["Scale"] = &client.Error{Kind: errdefs.KindInvalid, Msg: `scale "api" to 99: the count must be between 1 and 64`}
		}, code: ExitUsage, stderr: "tend: scale \"api\" to 99: the count must be between 1 and 64\n", calls: "Scale api 99"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tt.setup != nil {
				tt.setup(e.c)
			}
			code := e.run(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, e.errOut)
			}
			if got := e.out.String(); got != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, tt.stdout)
			}
			if got := e.errOut.String(); got != tt.stderr {
				t.Errorf("stderr %q, want %q", got, tt.stderr)
			}
			if got := e.c.Calls(); got != tt.calls {
				t.Errorf("calls %q, want %q", got, tt.calls)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	e := newTestEnv(t)
	p := &e.c.procs[0].Pm2Env
	p.Procs, p.MaxMemoryRestart, p.MemoryRestarts = 3, 300<<20, 1
	p.Exits = []api.Exit{{At: 1_700_000_000_000, Code: new(1), UptimeMs: 1500, Why: "exit"}, {At: 1_700_000_100_000, UptimeMs: 60000, Why: "memory limit"}}
	p.AxmMonitor = map[string]any{"queue": map[string]any{"value": 3, "unit": "jobs"}, "Heap Size": map[string]any{"value": "10.5", "unit": "MiB"}}
	if code := e.run("describe", "0"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	created := fmt.Sprint(strings.Fields(strings.Split(e.out.String(), "created at")[1])[0])
	at := func(ms int64) string { return time.UnixMilli(ms).Format(time.RFC3339) }
	want := strings.NewReplacer("CREATED", created, "EXIT1", at(1_700_000_000_000), "EXIT2", at(1_700_000_100_000)).Replace(describeAPI)
	if e.out.String() != want {
		t.Errorf("describe:\n%s\nwant:\n%s", e.out, want)
	}
	e = newTestEnv(t)
	e.run("describe", "api")
	if n := strings.Count(e.out.String(), "Describing process"); n != 2 {
		t.Errorf("describe api: %d blocks", n)
	}
}

// describe masks secret arguments and variables as env does, unless --show-secrets.
func TestDescribeMasksSecretArgs(t *testing.T) {
	e := newTestEnv(t)
	e.c.procs[0].Pm2Env.Args = []string{"--token", "t0k", "--port", "80", "postgres://u:pw@db/x"}
	e.c.procs[0].Pm2Env.NodeArgs = []string{"--db-password=hunter2"}
	e.c.procs[0].Pm2Env.Env = map[string]string{"API_TOKEN": "t0k", "A": "1"}
	if code := e.run("describe", "0"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	if strings.Contains(e.out.String(), "    A ") {
		t.Errorf("describe shows A, which this shell has too:\n%s", e.out)
	}
	for _, want := range []string{
		`script args        ["--token","********","--port","80","postgres://u:********@db/x"]`,
		`interpreter args   ["--db-password=********"]`,
		"    API_TOKEN  ********\n",
	} {
		if !strings.Contains(e.out.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, e.out)
		}
	}
	e = newTestEnv(t)
	e.c.procs[0].Pm2Env.Args = []string{"--token", "t0k"}
	e.run("describe", "0", "--show-secrets")
	if !strings.Contains(e.out.String(), `["--token","t0k"]`) {
		t.Errorf("--show-secrets hid the token:\n%s", e.out)
	}
}
