package cli

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// What each command's flags and arguments leave in its options, seen through runF: the command
// never runs and the daemon is never asked.
func TestFlagParsing(t *testing.T) {
	e := newTestEnv(t)
	var got any
	capture := func(o any) error { got = o; return nil }
	for _, tt := range []struct {
		cmd  func() *cobra.Command
		args []string
		want any
	}{
		{func() *cobra.Command { return NewCmdStop(e.f, func(o *ActionOptions) error { return capture(o) }) }, []string{"api", "1", "-s"},
			ActionOptions{Verb: "stop", Targets: []string{"api", "1"}, Silent: true}},
		{func() *cobra.Command { return NewCmdRestart(e.f, func(o *ActionOptions) error { return capture(o) }) }, []string{"eco.json", "--update-env"},
			ActionOptions{Verb: "restart", Targets: []string{"eco.json"}, UpdateEnv: true}},
		{func() *cobra.Command { return NewCmdReload(e.f, func(o *ActionOptions) error { return capture(o) }) }, []string{"all"},
			ActionOptions{Verb: "reload", Targets: []string{"all"}}},
		{func() *cobra.Command { return NewCmdDelete(e.f, func(o *ActionOptions) error { return capture(o) }) }, []string{"jobs"},
			ActionOptions{Verb: "delete", Targets: []string{"jobs"}}},
		{func() *cobra.Command { return NewCmdScale(e.f, func(o *ScaleOptions) error { return capture(o) }) }, []string{"api", "-2", "-s"},
			ScaleOptions{Name: "api", Count: -2, Relative: true, Silent: true}},
		{func() *cobra.Command { return NewCmdScale(e.f, func(o *ScaleOptions) error { return capture(o) }) }, []string{"api", " 4 "},
			ScaleOptions{Name: "api", Count: 4}},
		{func() *cobra.Command { return NewCmdScale(e.f, func(o *ScaleOptions) error { return capture(o) }) }, []string{"api", "+3"},
			ScaleOptions{Name: "api", Count: 3, Relative: true}},
		{func() *cobra.Command { return NewCmdMsg(e.f, func(o *MsgOptions) error { return capture(o) }) }, []string{"api", `{"cmd":"x"}`},
			MsgOptions{Target: "api", Message: json.RawMessage(`{"cmd":"x"}`)}},
		{func() *cobra.Command { return NewCmdSend(e.f, func(o *SendOptions) error { return capture(o) }) }, []string{"0", "a", "b"},
			SendOptions{Target: "0", Line: "a b"}},
		{func() *cobra.Command { return NewCmdSignal(e.f, func(o *SignalOptions) error { return capture(o) }) }, []string{"USR2", "all"},
			SignalOptions{Signal: "USR2", Target: "all"}},
		{func() *cobra.Command { return NewCmdPid(e.f, func(o *PidOptions) error { return capture(o) }) }, nil,
			PidOptions{All: true}},
		{func() *cobra.Command { return NewCmdPid(e.f, func(o *PidOptions) error { return capture(o) }) }, []string{"api"},
			PidOptions{Target: "api"}},
		{func() *cobra.Command {
			return NewCmdDescribe(e.f, func(o *DescribeOptions) error { return capture(o) })
		}, []string{"3"},
			DescribeOptions{Target: "3"}},
		{func() *cobra.Command { return NewCmdLogs(e.f, func(o *LogsOptions) error { return capture(o) }) }, nil,
			LogsOptions{All: true, Lines: 15, FollowEvery: 200 * time.Millisecond, RescanEvery: time.Second}},
		{func() *cobra.Command { return NewCmdLogs(e.f, func(o *LogsOptions) error { return capture(o) }) }, []string{"api", "--lines", "3", "--nostream", "--raw", "--err", "--out"},
			LogsOptions{Target: "api", Lines: 3, NoStream: true, Raw: true, ErrOnly: true, OutOnly: true, FollowEvery: 200 * time.Millisecond, RescanEvery: time.Second}},
		{func() *cobra.Command { return NewCmdFlush(e.f, func(o *FlushOptions) error { return capture(o) }) }, []string{"api"},
			FlushOptions{Target: "api", DaemonLog: "/home/u/.tend/tend.log"}},
		{func() *cobra.Command { return NewCmdDaemon(e.f, func(o *DaemonOptions) error { return capture(o) }) }, []string{"--background"},
			DaemonOptions{Home: "/home/u/.tend", Background: true}},
		{func() *cobra.Command { return NewCmdDaemon(e.f, func(o *DaemonOptions) error { return capture(o) }) }, nil,
			DaemonOptions{Home: "/home/u/.tend"}},
		{func() *cobra.Command { return NewCmdKill(e.f, func(o *KillOptions) error { return capture(o) }) }, nil,
			KillOptions{Home: "/home/u/.tend"}},
		{func() *cobra.Command { return NewCmdPing(e.f, func(o *PingOptions) error { return capture(o) }) }, nil, PingOptions{}},
		{func() *cobra.Command { return NewCmdList(e.f, func(o *ListOptions) error { return capture(o) }) }, nil, ListOptions{}},
		{func() *cobra.Command { return NewCmdJlist(e.f, func(o *JlistOptions) error { return capture(o) }) }, nil, JlistOptions{}},
	} {
		got = nil
		cmd := tt.cmd()
		name := cmd.Name() + " " + strings.Join(tt.args, " ")
		if err := parse(t, cmd, tt.args...); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got == nil {
			t.Errorf("%s: runF not called", name)
			continue
		}
		if g := withoutDeps(got); !reflect.DeepEqual(g, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, g, tt.want)
		}
	}
	if calls := e.c.Calls(); calls != "" {
		t.Errorf("flag parsing asked the daemon: %s", calls)
	}
}

// withoutDeps is an options struct (by value) with what the factory gave it zeroed, so that
// only what the flags set is compared.
func withoutDeps(o any) any {
	v := reflect.ValueOf(o).Elem()
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	for _, name := range []string{"IO", "Client", "Cwd", "Environ", "Now", "Context"} {
		if f := c.FieldByName(name); f.IsValid() {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return c.Interface()
}

func TestListColoursAndUptime(t *testing.T) {
	e := newTestEnv(t)
	e.c.procs[0].Pm2Env.PmUptime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	e.c.procs[1].Pm2Env.Status = "stopped"
	e.c.procs = append(e.c.procs, e.c.procs[0])
	e.c.procs[3].Pm2Env.Status = "launching"
	e.f.IO.SetStdoutTTY(true)
	opts := &ListOptions{IO: e.f.IO, Client: e.f.Client, Now: func() time.Time { return time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC) }}
	if err := listRun(opts); err != nil {
		t.Fatal(err)
	}
	s := e.out.String()
	for _, want := range []string{
		"│ 0  │ api    │ fork    │ 100 │ \x1b[32monline\x1b[0m    │ 0 │ 5m     │ 1.5% │ 42.0mb │",
		"│ 1  │ api    │ cluster │ 101 │ \x1b[90mstopped\x1b[0m   │ 3 │ 0      │ 1.5% │ 42.0mb │",
		"│ 2  │ worker │ fork    │ 0   │ \x1b[31merrored\x1b[0m   │ 0 │ 0      │ 0%   │ 0b     │",
		"│ 0  │ api    │ fork    │ 100 │ \x1b[33mlaunching\x1b[0m │ 0 │ 0      │ 1.5% │ 42.0mb │",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}

func TestHumanFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Second: "5s", 3 * time.Minute: "3m", 5 * time.Hour: "5h", 72 * time.Hour: "3D"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q", d, got)
		}
	}
	for n, want := range map[int64]string{0: "0b", 2048: "2.0kb", 3 << 20: "3.0mb", 5 << 30: "5.0gb"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q", n, got)
		}
	}
}

func TestDescribeExtras(t *testing.T) {
	e := newTestEnv(t)
	code := 7
	p := &e.c.procs[2].Pm2Env
	p.ExitCode, p.PmLogPath, p.Listening, p.Ports, p.Proxy, p.DrainTimeout = &code, "/l/all.log", []int{8000}, []string{"8000"}, true, 10000
	e.run("describe", "worker")
	for _, want := range []string{"  last exit code     7\n", "  combined log path  /l/all.log\n", "  ports              [8000] (relayed by tend's proxy)\n", "  drain timeout      10000 ms\n"} {
		if !strings.Contains(e.out.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, e.out)
		}
	}
}

// --no-color and NO_COLOR take the colours off a terminal's table.
func TestNoColor(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  bool
	}{{[]string{"ls", "--no-color"}, false}, {[]string{"--no-color", "ls"}, false}, {[]string{"ls"}, true}} {
		e := newTestEnv(t)
		e.f.IO.SetStdoutTTY(true)
		e.f.IO.SetNoColor(tc.env) // what SystemIO reads from NO_COLOR
		if code := e.run(tc.args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, e.errOut)
		}
		if strings.Contains(e.out.String(), "\x1b[") {
			t.Errorf("%v (NO_COLOR %v): colours in %q", tc.args, tc.env, e.out)
		}
	}
}

// --sort orders the table; -m prints PM2's mini list.
func TestListSortAndMini(t *testing.T) {
	e := newTestEnv(t)
	if code := e.run("ls", "--sort", "name:desc"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	if out := e.out.String(); strings.Index(out, "worker") > strings.Index(out, "api") {
		t.Errorf("name:desc puts api first:\n%s", out)
	}
	e = newTestEnv(t)
	if code := e.run("ls", "--sort", "colour"); code != ExitUsage || !strings.Contains(e.errOut.String(), "--sort colour: sort by name, id") {
		t.Errorf("--sort colour: exit %d, %q", code, e.errOut)
	}
	e = newTestEnv(t)
	e.c.procs = e.c.procs[2:]
	e.c.procs[0].Pm2Env.Version = "N/A"
	e.c.procs[0].Pm2Env.PmErrLogPath = "/h/logs/worker-error.log"
	e.c.procs[0].Pm2Env.PmPidPath = "/h/pids/worker-2.pid"
	if code := e.run("ls", "-m"); code != 0 {
		t.Fatalf("-m: exit %d", code)
	}
	want := "+--- worker\nnamespace : jobs\nversion : N/A\npid : 0\npm2 id : 2\nstatus : errored\nmode : fork\nrestarted : 0\n" +
		"uptime : 0\nmemory usage : 0b\nerror log : /h/logs/worker-error.log\nwatching : no\nPID file : /h/pids/worker-2.pid\n\n"
	if e.out.String() != want {
		t.Errorf("-m:\n%q\nwant\n%q", e.out, want)
	}
}
