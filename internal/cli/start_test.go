package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
)

// script writes an executable file in the factory's cwd and returns its path.
func (e *testEnv) script(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(e.f.Cwd, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexec sleep 100\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *testEnv) file(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(e.f.Cwd, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartFlags(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		check func(o *StartOptions) bool
	}{
		{[]string{"app.js"}, func(o *StartOptions) bool {
			return o.Target == "app.js" && o.Args == nil && len(o.Given) == 0 && o.MaxRestarts == config.DefaultMaxRestarts &&
				o.KillSignal == config.DefaultKillSignal && o.InstanceVar == config.DefaultInstanceVar && !o.Silent && !o.NoDaemon
		}},
		{[]string{"npm", "--name", "web", "--", "run", "start"}, func(o *StartOptions) bool {
			return o.Target == "npm" && reflect.DeepEqual(o.Args, []string{"run", "start"}) && o.Name == "web"
		}},
		{[]string{}, func(o *StartOptions) bool { return o.Target == "" }},
		{[]string{"a.js", "-s", "--no-daemon", "-i", "max", "-x", "-k", "3s", "--port", "80", "--port", "127.0.0.1:81"}, func(o *StartOptions) bool {
			return o.Silent && o.NoDaemon && o.Instances == "max" && o.Fork && o.KillTimeout == "3s" &&
				reflect.DeepEqual(o.Ports, []string{"80", "127.0.0.1:81"}) &&
				reflect.DeepEqual(o.Given, map[string]string{"instances": "max", "execute-command": "true", "kill-timeout": "3s", "port": "[80,127.0.0.1:81]"})
		}},
		{[]string{"a.js", "--node-args", "--inspect", "--stop-exit-codes", "0,3", "--cwd", "/srv", "--no-autorestart", "--no-treekill"}, func(o *StartOptions) bool {
			return o.InterpreterArgs == "--inspect" && reflect.DeepEqual(o.StopExitCodes, []int{0, 3}) && o.AppCwd == "/srv" && o.NoAutorestart && o.NoTreekill
		}},
	} {
		e := newTestEnv(t)
		var got *StartOptions
		cmd := NewCmdStart(e.f, func(o *StartOptions) error { got = o; return nil })
		if err := parse(t, cmd, tt.args...); err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if !tt.check(got) {
			t.Errorf("%v: options %+v", tt.args, got)
		}
	}
}

func TestStartScript(t *testing.T) {
	e := newTestEnv(t)
	e.c.running = false
	app := e.script(t, "app.sh")
	code := e.run("start", "app.sh", "--name", "web", "-i", "2", "--kill-timeout", "3s", "--restart-delay", "250",
		"--time", "--namespace", "ns", "--max-restarts", "4", "--stop-exit-codes", "0", "--", "-v")
	if code != 0 || e.errOut.String() != "" || e.out.String() != fixtureTable {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, e.errOut, e.out)
	}
	if calls := e.c.Calls(); calls != "Start web ; List" {
		t.Fatalf("calls %q", calls)
	}
	s := e.c.starts[0].Apps[0]
	if s.Script != app || s.Name != "web" || s.Instances != 2 || s.KillTimeout != 3*time.Second || s.RestartDelay != 250*time.Millisecond ||
		s.LogDateFormat != "YYYY-MM-DDTHH:mm:ss" || s.Namespace != "ns" || s.MaxRestarts != 4 || !reflect.DeepEqual(s.Args, []string{"-v"}) ||
		!reflect.DeepEqual(s.StopExitCodes, []int{0}) || s.Env["A"] != "1" || s.Cwd != e.f.Cwd || s.ExecMode != config.ForkMode {
		t.Fatalf("spec %+v", s)
	}
}

func TestStartSpecErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-i", "100000"}, `-i: instances 100000 is more than`},
		{[]string{"--port", "abc"}, `--port: port "abc" must be a number from 1 to 65535`},
		{[]string{"--proxy"}, "--proxy relays a port: add --port <port>"},
		{[]string{"--instance-var", "A B"}, `--instance-var "A B" must be a variable name`},
		{[]string{"--max-restarts", "-1"}, "--max-restarts must not be negative, got -1"},
		{[]string{"--kill-signal", "SIGNOPE"}, `--kill-signal: unknown signal "SIGNOPE"`},
		{[]string{"--min-uptime", "x"}, `--min-uptime: bad duration "x"`},
		{[]string{"--name", "all"}, `"all" is reserved and cannot be an app name`},
	} {
		e := newTestEnv(t)
		e.c.running = false
		e.script(t, "app.sh")
		code := e.run(append([]string{"start", "app.sh"}, tt.args...)...)
		if code != ExitUsage || !strings.HasPrefix(e.errOut.String(), "tend: "+tt.msg) {
			t.Errorf("%v: exit %d, stderr %q", tt.args, code, e.errOut)
		}
	}
}

func TestStartPortAndProxy(t *testing.T) {
	e := newTestEnv(t)
	e.c.running = false
	e.script(t, "app.sh")
	if code := e.run("start", "app.sh", "--port", "8000", "--proxy", "-s", "--drain-timeout", "2s", "-x"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	s := e.c.starts[0].Apps[0]
	if len(s.Ports) != 1 || s.Ports[0].Port != 8000 || !s.Proxy || s.DrainTimeout != 2*time.Second || s.ExecMode != config.ForkMode {
		t.Fatalf("spec %+v", s)
	}
}

func TestStartExistingApp(t *testing.T) {
	e := newTestEnv(t)
	if code := e.run("start", "api"); code != 0 || e.out.String() != fixtureTable {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	if calls := e.c.Calls(); calls != "List; Action start api; List" {
		t.Fatalf("calls %q", calls)
	}

	e = newTestEnv(t)
	if code := e.run("start", "all", "-s"); code != 0 || e.c.Calls() != "Action start all" {
		t.Fatalf("start all: exit %d, calls %q", code, e.c.Calls())
	}

	// A namespace, as PM2 takes it: its apps are started.
	e = newTestEnv(t)
	if code := e.run("start", "jobs", "-s"); code != 0 || e.c.Calls() != "List; Action start jobs" {
		t.Fatalf("start a namespace: exit %d, calls %q, %s", code, e.c.Calls(), e.errOut)
	}

	e = newTestEnv(t)
	code := e.run("start", "api", "--max-restarts", "3", "-i", "2")
	want := "tend: tend start api takes an app's settings, not --instances: start the script or the config again with it (tend scale for instances)\n"
	if code != ExitUsage || e.errOut.String() != want {
		t.Fatalf("exit %d, stderr %q", code, e.errOut)
	}
}

func TestStartNameClash(t *testing.T) {
	e := newTestEnv(t)
	e.c.procs[0].Pm2Env.PmExecPath = "/srv/other.js"
	app := e.script(t, "app.sh")
	code := e.run("start", "app.sh", "--name", "api")
	want := `tend: an app named "api" already runs /srv/other.js; pass --name to start ` + app + " beside it, or delete api first\n"
	if code != ExitUsage || e.errOut.String() != want {
		t.Fatalf("exit %d, stderr %q", code, e.errOut)
	}
	// The same script again restarts it with the new settings.
	e.c.procs[0].Pm2Env.PmExecPath, e.c.procs[1].Pm2Env.PmExecPath = app, app
	e.errOut = &syncBuffer{}
	e.f.IO.ErrOut = e.errOut
	if code := e.run("start", "app.sh", "--name", "api", "-s"); code != 0 {
		t.Fatalf("same script: exit %d, %s", code, e.errOut)
	}
}

func TestStartStartFails(t *testing.T) {
	e := newTestEnv(t)
	e.c.running = false
	e.script(t, "app.sh")
	e.c.errs["Start"] = errUnreachable
	if code := e.run("start", "app.sh"); code != ExitUnreachable {
		t.Fatalf("exit %d", code)
	}
}

func TestStartConfigFile(t *testing.T) {
	e := newTestEnv(t)
	e.script(t, "app.sh")
	e.file(t, "apps.json", `{"apps": [{"name": "a", "script": "app.sh", "autorestrat": true}, {"name": "b", "script": "app.sh"}]}`)
	if code := e.run("start", "apps.json", "-s"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	if calls := e.c.Calls(); calls != "Start a,b " {
		t.Fatalf("calls %q", calls)
	}
	if !strings.Contains(e.errOut.String(), `tend: warning: apps.json: apps[0] "a": unknown keys, ignored: autorestrat (did you mean autorestart?)`) {
		t.Errorf("no warning for an unknown key: %q", e.errOut)
	}
	if a := e.c.starts[0].Apps[0]; a.Env["A"] != "1" {
		t.Errorf("the CLI's environment is under the app's env: %v", a.Env)
	}

	e = newTestEnv(t)
	e.file(t, "bad.json", `{"apps": [{"name": "x"}]}`)
	if code := e.run("start", "bad.json"); code != ExitUsage || !strings.Contains(e.errOut.String(), "script is missing") {
		t.Fatalf("bad config: exit %d, %q", code, e.errOut)
	}

	// No target: ecosystem.config.js in the cwd is the target (here one that cannot be read).
	e = newTestEnv(t)
	e.file(t, "ecosystem.config.js", `module.exports = {`)
	if code := e.run("start"); code != ExitUsage || !strings.Contains(e.errOut.String(), "ecosystem.config.js") {
		t.Fatalf("default config: exit %d, %q", code, e.errOut)
	}
}

func TestActionConfigFile(t *testing.T) {
	e := newTestEnv(t)
	e.script(t, "app.sh")
	e.file(t, "apps.json", `{"apps": [{"name": "a", "script": "app.sh"}, {"name": "b", "script": "app.sh"}]}`)
	e.c.procs = e.named("a", "b")
	if code := e.run("stop", "apps.json", "-s"); code != 0 || e.c.Calls() != "List; Action stop a; Action stop b" {
		t.Fatalf("stop: exit %d, calls %q, %s", code, e.c.Calls(), e.errOut)
	}
	// Another project's app of the same name, with another script, is left alone.
	e.c.procs, e.c.calls = e.named("a", "b"), nil
	e.c.procs[0].Pm2Env.PmExecPath = "/elsewhere/api.js"
	if code := e.run("stop", "apps.json", "-s"); code != 0 || e.c.Calls() != "List; Action stop b" ||
		!strings.Contains(e.errOut.String(), "tend: note: apps.json: the app a runs /elsewhere/api.js, not this file's") {
		t.Fatalf("stop beside another project's app: exit %d, calls %q, %q", code, e.c.Calls(), e.errOut)
	}
	// An app of the file that is not in the list is skipped with a note, as PM2 skips it.
	before := len(e.errOut.String())
	e.c.procs, e.c.calls = e.named("b"), nil
	if code := e.run("delete", "apps.json", "-s"); code != 0 || e.c.Calls() != "List; Action delete b" ||
		e.errOut.String()[before:] != "tend: note: apps.json: a is not in the list; nothing to delete\n" {
		t.Fatalf("delete: exit %d, calls %q, %q", code, e.c.Calls(), e.errOut)
	}
	e.c.calls = nil
	if code := e.run("reload", "apps.json", "--update-env", "-s"); code != 0 || e.c.Calls() != "Start a,b reload" {
		t.Fatalf("reload: exit %d, calls %q, %s", code, e.c.Calls(), e.errOut)
	}
	// PM2's deploy verbs: a reload or restart of a config starts what does not run.
	for verb, mode := range map[string]string{"startOrReload": "reload", "startOrGracefulReload": "reload", "startOrRestart": "restart"} {
		e.c.calls = nil
		if code := e.run(verb, "apps.json", "--env", "production", "-s"); code != 0 || e.c.Calls() != "Start a,b "+mode {
			t.Fatalf("%s: exit %d, calls %q, %s", verb, code, e.c.Calls(), e.errOut)
		}
	}
	e.c.calls = nil
	if code := e.run("restart", "missing.json"); code != ExitUsage || e.c.Calls() != "" {
		t.Fatalf("restart missing: exit %d, calls %q", code, e.c.Calls())
	}
	if code := e.run("delete", "missing.json"); code != ExitUsage || e.c.Calls() != "" {
		t.Fatalf("delete missing: exit %d, calls %q", code, e.c.Calls())
	}
	// By name, the CLI's own environment goes with the restart.
	e = newTestEnv(t)
	e.f.Environ = []string{"TEND_TEST=now", "HOME=/h"}
	if code := e.run("restart", "api", "--update-env", "-s"); code != 0 || e.c.Calls() != "UpdateEnv restart api now" {
		t.Fatalf("exit %d, calls %q: %s", code, e.c.Calls(), e.errOut)
	}
}

func TestStartForeground(t *testing.T) {
	e := newTestEnv(t)
	e.script(t, "app.sh")
	var got []api.StartRequest
	cmd := NewCmdStart(e.f, func(o *StartOptions) error {
		o.Foreground = func(req api.StartRequest) error { got = append(got, req); return nil }
		return startRun(o)
	})
	if err := parse(t, cmd, "--no-daemon", "app.sh", "--name", "fg"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Apps[0].Name != "fg" || e.out.String() != "" {
		t.Fatalf("foreground start %+v, stdout %q", got, e.out)
	}
	// With --no-daemon, a name is never looked up in a daemon: it is a script.
	if err := parse(t, NewCmdStart(e.f, func(o *StartOptions) error { return startRun(o) }), "--no-daemon", "api"); err == nil ||
		!strings.Contains(err.Error(), "script not found") {
		t.Fatalf("foreground start of a name: %v", err)
	}
}

// --env <name> merges each app's env_<name> over its env, on start and on restart or reload of
// the file; a name no app has is said, not ignored.
func TestStartConfigEnv(t *testing.T) {
	e := newTestEnv(t)
	e.script(t, "app.sh")
	e.file(t, "apps.json", `{"apps": [{"name": "a", "script": "app.sh", "env": {"MODE": "dev", "KEEP": "1"}, "env_production": {"MODE": "prod"}},
	  {"name": "b", "script": "app.sh", "env": {"MODE": "dev"}}]}`)
	if code := e.run("start", "apps.json", "--env", "production", "-s"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	a, b := e.c.starts[0].Apps[0], e.c.starts[0].Apps[1]
	if a.Env["MODE"] != "prod" || a.Env["KEEP"] != "1" || b.Env["MODE"] != "dev" || a.EnvFor != nil {
		t.Fatalf("a %v (blocks %v), b %v", a.Env, a.EnvFor, b.Env)
	}
	if code := e.run("restart", "apps.json", "--env", "production", "-s"); code != 0 || e.c.starts[1].Apps[0].Env["MODE"] != "prod" {
		t.Fatalf("restart: exit %d, env %v", code, e.c.starts[1].Apps[0].Env)
	}
	before := len(e.errOut.String())
	if code := e.run("start", "apps.json", "--env", "prod", "-s"); code != 0 || e.c.starts[2].Apps[0].Env["MODE"] != "dev" {
		t.Fatalf("unknown --env: exit %d", code)
	}
	if want := "tend: warning: apps.json: no app has env_prod and no deploy has prod; --env prod changes nothing\n"; e.errOut.String()[before:] != want {
		t.Fatalf("stderr %q, want %q", e.errOut.String()[before:], want)
	}
}

// --only picks a config file's apps by name for every verb; a name the file does not have is a
// usage error that lists the names it has.
func TestConfigOnly(t *testing.T) {
	e := newTestEnv(t)
	e.script(t, "app.sh")
	e.file(t, "apps.json", `{"apps": [{"name": "a", "script": "app.sh"}, {"name": "b", "script": "app.sh"}, {"name": "c", "script": "app.sh"}]}`)
	e.c.procs = e.named("a", "b", "c")
	for _, tt := range []struct {
		args  []string
		calls string
	}{
		{[]string{"start", "apps.json", "--only", "c,a"}, "Start a,c "},
		{[]string{"restart", "apps.json", "--only", "b"}, "Start b restart"},
		{[]string{"stop", "apps.json", "--only", "a, b"}, "List; Action stop a; Action stop b"},
	} {
		e.c.calls = nil
		if code := e.run(append(tt.args, "-s")...); code != 0 || e.c.Calls() != tt.calls {
			t.Fatalf("%v: exit %d, calls %q, want %q; %s", tt.args, code, e.c.Calls(), tt.calls, e.errOut)
		}
	}
	e.c.calls = nil
	if code := e.run("start", "apps.json", "--only", "a,zz"); code != ExitUsage || e.c.Calls() != "" ||
		!strings.Contains(e.errOut.String(), "tend: --only a,zz: apps.json has no app named zz (it has a, b, c)") {
		t.Fatalf("unknown name: exit %d, calls %q, %q", code, e.c.Calls(), e.errOut)
	}
}

// A config on stdin: tend start - (JSON; relative paths from the cwd).
func TestStartConfigOnStdin(t *testing.T) {
	e := newTestEnv(t)
	e.script(t, "app.sh")
	e.in.WriteString(`{"apps": [{"name": "a", "script": "app.sh"}]}`)
	if code := e.run("start", "-", "-s"); code != 0 || e.c.Calls() != "Start a " {
		t.Fatalf("exit %d, calls %q, %s", code, e.c.Calls(), e.errOut)
	}
	if s := e.c.starts[0].Apps[0].Script; s != filepath.Join(e.f.Cwd, "app.sh") {
		t.Errorf("script %q", s)
	}
	e = newTestEnv(t)
	e.in.WriteString(`{"apps": [`)
	if code := e.run("start", "-"); code != ExitUsage || !strings.Contains(e.errOut.String(), "(stdin):1:10 is not valid JSON") {
		t.Fatalf("bad stdin: exit %d, %q", code, e.errOut)
	}
}

// append_env_to_name: start --env names the app <name>-<env>; stop and delete of the config
// with the same --env find it by that name, and restart of the config starts it under it.
func TestAppendEnvToName(t *testing.T) {
	e := newTestEnv(t)
	e.script(t, "app.sh")
	e.file(t, "apps.json", `{"apps": [{"name": "a", "script": "app.sh", "append_env_to_name": true, "env_production": {"X": "1"}}, {"name": "b", "script": "app.sh"}]}`)
	if code := e.run("start", "apps.json", "--env", "production", "-s"); code != 0 || e.c.Calls() != "Start a-production,b " {
		t.Fatalf("start: exit %d, calls %q: %s", code, e.c.Calls(), e.errOut)
	}
	// --only takes the name in the file, as PM2's does, or the one --env gave.
	for _, sel := range []string{"a", "a-production"} {
		e.c.calls = nil
		if code := e.run("start", "apps.json", "--env", "production", "--only", sel, "-s"); code != 0 || e.c.Calls() != "Start a-production " {
			t.Fatalf("--only %s: exit %d, calls %q: %s", sel, code, e.c.Calls(), e.errOut)
		}
	}
	e = newTestEnv(t)
	e.script(t, "app.sh")
	e.file(t, "apps.json", `{"apps": [{"name": "a", "script": "app.sh", "append_env_to_name": true}, {"name": "b", "script": "app.sh"}]}`)
	e.c.procs = e.named("a-production", "b")
	if code := e.run("stop", "apps.json", "--env", "production", "-s"); code != 0 || e.c.Calls() != "List; Action stop a-production; Action stop b" {
		t.Fatalf("stop: exit %d, calls %q: %s", code, e.c.Calls(), e.errOut)
	}
}

// named is a list of one running instance per name, each running app.sh of the cwd.
func (e *testEnv) named(names ...string) []api.Process {
	var out []api.Process
	for i, n := range names {
		out = append(out, api.Process{Name: n, PmID: i, Pm2Env: api.Env{Name: n, PmID: i, Status: "online", PmExecPath: filepath.Join(e.f.Cwd, "app.sh")}})
	}
	return out
}

// start's flags for watch, memory, cron, users, pid files and log types are checked as their
// config keys are, in one line naming the flag.
func TestKeyFlags(t *testing.T) {
	e := newTestEnv(t)
	e.script(t, "app.sh")
	if code := e.run("start", "app.sh", "--watch", "--max-memory-restart", "300M", "-c", "0 3 * * *", "--uid", "root", "-s"); code != 0 ||
		e.errOut.String() != "" {
		t.Fatalf("exit %d, stderr %q", code, e.errOut)
	}
	for flag, want := range map[string]string{
		"--max-memory-restart=lots":   `tend: --max-memory-restart "lots" must be a size such as 300M, 1G or 512K`,
		"--cron-restart=61 * * * *":   `tend: --cron-restart "61 * * * *" is not a cron expression`,
		"--uid=no-such-user-here":     `tend: --uid "no-such-user-here": no such user on this machine`,
		"--log-type=xml":              `tend: --log-type must be json or raw, got "xml"`,
		"--watch=src,lib":             `tend: watch path `, // src does not exist beside app.sh
		"--watch=.":                   "",
		"--ignore-watch=node_modules": "",
	} {
		e := newTestEnv(t)
		e.script(t, "app.sh")
		args := []string{flag}
		if !strings.Contains(flag, "=") {
			args = strings.Fields(flag) // --watch src: two words
		}
		code := e.run(append(append([]string{"start", "app.sh"}, args...), "-s")...)
		if want == "" && code != 0 || want != "" && (code != ExitUsage || !strings.HasPrefix(e.errOut.String(), want) || e.c.Calls() != "") {
			t.Errorf("%s: exit %d, stderr %q, calls %q", flag, code, e.errOut, e.c.Calls())
		}
	}
}

// ls and describe never write a name's control characters raw (an older daemon's registry may
// hold one).
func TestSafeText(t *testing.T) {
	if got := safeText("a\x1b[2J\rb\xff"); got != "a\uFFFD[2J\uFFFDb\uFFFD" {
		t.Fatalf("%q", got)
	}
}

// PM2 starts each script given (tend start a.js b.js), and prints the table once.
func TestStartSeveralScripts(t *testing.T) {
	e := newTestEnv(t)
	a, b := e.script(t, "a.js"), e.script(t, "b.js")
	if code := e.run("start", a, b); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	if len(e.c.starts) != 2 || e.c.starts[0].Apps[0].Name != "a" || e.c.starts[1].Apps[0].Name != "b" {
		t.Fatalf("starts %+v", e.c.starts)
	}
	if n := strings.Count(e.out.String(), "│ id"); n != 1 {
		t.Errorf("%d tables, want 1:\n%s", n, e.out)
	}
}

// delete - reads the config from stdin and deletes its apps, as PM2's piped config does.
func TestActionConfigOnStdin(t *testing.T) {
	e := newTestEnv(t)
	e.in.WriteString(`{"apps": [{"name": "api", "script": "api.js"}, {"name": "gone", "script": "g.js"}]}`)
	if code := e.run("delete", "-"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	if got := e.c.Calls(); !strings.Contains(got, "Action delete api") || strings.Contains(got, "gone") {
		t.Errorf("calls %q", got)
	}
	if !strings.Contains(e.errOut.String(), "(stdin): gone is not in the list") {
		t.Errorf("stderr %q", e.errOut)
	}
}

// Regular expressions and script paths select apps, as in PM2.
func TestRegexAndScriptSelectors(t *testing.T) {
	e := newTestEnv(t)
	if code := e.run("stop", "/^ap/"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	if got := e.c.Calls(); !strings.Contains(got, "Action stop api") {
		t.Errorf("calls %q", got)
	}
	e = newTestEnv(t)
	if code := e.run("stop", "/^nomatch/"); code != ExitNotFound || !strings.Contains(e.errOut.String(), "no app name matches /^nomatch/") {
		t.Errorf("exit %d, stderr %q", code, e.errOut)
	}
}

// -i takes what PM2 takes, read as PM2's parseInt reads it, and says how it read it.
func TestStartInstancesAsPM2ReadsThem(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want int
		note string
	}{
		{"many", config.CPUCount(), `instances "many" is not a number; read as max`},
		{"2.7", 2, `instances "2.7" read as 2, as PM2 reads it`},
		{"-99", 1, "1 instance, as PM2 starts"},
		{"3", 3, ""},
	} {
		e := newTestEnv(t)
		if code := e.run("start", e.script(t, "a.js"), "-i", tc.arg); code != 0 {
			t.Fatalf("-i %s: exit %d: %s", tc.arg, code, e.errOut)
		}
		if got := e.c.starts[0].Apps[0].Instances; got != tc.want {
			t.Errorf("-i %s: %d instances, want %d", tc.arg, got, tc.want)
		}
		if !strings.Contains(e.errOut.String(), tc.note) || tc.note == "" && e.errOut.String() != "" {
			t.Errorf("-i %s: stderr %q, want the note %q", tc.arg, e.errOut, tc.note)
		}
	}
}

// The same script again, as PM2 answers it: an error while the app runs ("already launched"),
// -f another copy (here: one more instance of the app), a start when it is stopped, and a
// restart with new settings when some are given.
func TestStartScriptThatRuns(t *testing.T) {
	e := newTestEnv(t)
	app := e.script(t, "app.sh")
	e.c.procs = e.named("app")
	if code := e.run("start", app); code != ExitFailure || !strings.Contains(e.errOut.String(), `app "app" already runs`) ||
		!strings.Contains(e.errOut.String(), "tend start app.sh -f starts another copy") {
		t.Fatalf("start again: exit %d, stderr %q", code, e.errOut)
	}
	e = newTestEnv(t)
	app = e.script(t, "app.sh")
	e.c.procs = e.named("app", "app")
	if code := e.run("start", app, "-f", "-i", "2", "-s"); code != 0 || !strings.Contains(e.c.Calls(), "Scale app 4") {
		t.Fatalf("-f: exit %d, calls %q, %s", code, e.c.Calls(), e.errOut)
	}
	e = newTestEnv(t)
	app = e.script(t, "app.sh")
	e.c.procs = e.named("app")
	e.c.procs[0].Pm2Env.Status = "stopped"
	if code := e.run("start", app, "-s"); code != 0 || len(e.c.starts) != 1 {
		t.Fatalf("start a stopped app: exit %d, starts %d, %s", code, len(e.c.starts), e.errOut)
	}
	e = newTestEnv(t)
	app = e.script(t, "app.sh")
	e.c.procs = e.named("app")
	if code := e.run("start", app, "--max-restarts", "3", "-s"); code != 0 || len(e.c.starts) != 1 {
		t.Fatalf("start with new settings: exit %d, starts %d, %s", code, len(e.c.starts), e.errOut)
	}
}

// init writes PM2's starter config; one that exists is kept as .bak (PM2 overwrites it).
func TestInit(t *testing.T) {
	e := newTestEnv(t)
	path := filepath.Join(e.f.Cwd, "ecosystem.config.js")
	if code := e.run("init", "simple"); code != 0 || !strings.Contains(e.out.String(), "File "+path+" generated") {
		t.Fatalf("init: exit %d, %s%s", code, e.out, e.errOut)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `script : "./app.js"`) {
		t.Fatalf("template: %s", b)
	}
	for _, mode := range []string{"simple", ""} {
		os.Remove(path)
		os.Remove(path + ".bak")
		body := initFull
		if mode == "simple" {
			body = initSimple
		}
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := exec.LookPath("node"); err == nil {
			if specs, err := config.LoadFile(path); err != nil || len(specs) != 1 || specs[0].Name != "app1" {
				t.Errorf("the %q template does not load: %v %+v", mode, err, specs)
			}
		}
	}
	os.Remove(path)
	e = newTestEnv(t)
	path = filepath.Join(e.f.Cwd, "ecosystem.config.js")
	os.WriteFile(path, []byte("mine"), 0o644)
	if code := e.run("init", "echo"); code != 0 {
		t.Fatalf("init over a file: exit %d, %s", code, e.errOut)
	}
	if b, _ := os.ReadFile(path + ".bak"); string(b) != "mine" {
		t.Errorf("the user's file: %q", b)
	}
	if code := e.run("init"); code != ExitUsage || !strings.Contains(e.errOut.String(), "--force replaces the .bak") {
		t.Errorf("init with a .bak there: exit %d, %s", code, e.errOut)
	}
}

// --shutdown-with-message, and PM2_KILL_USE_MESSAGE=true in the environment (PM2's switch),
// stop the app with the "shutdown" message.
func TestStartShutdownWithMessage(t *testing.T) {
	e := newTestEnv(t)
	if code := e.run("start", e.script(t, "a.js"), "--shutdown-with-message", "-s"); code != 0 || !e.c.starts[0].Apps[0].ShutdownWithMessage {
		t.Fatalf("flag: exit %d, %s", code, e.errOut)
	}
	e = newTestEnv(t)
	e.f.Environ = append(e.f.Environ, "PM2_KILL_USE_MESSAGE=true")
	if code := e.run("start", e.script(t, "a.js"), "-s"); code != 0 || !e.c.starts[0].Apps[0].ShutdownWithMessage {
		t.Fatalf("PM2_KILL_USE_MESSAGE: exit %d, %s", code, e.errOut)
	}
}

// PM2's attribute update: restart, reload and start of an app that exists send start's setting
// flags as config keys; flags that are not settings of an app are refused before any call.
func TestRestartSettings(t *testing.T) {
	for _, c := range []struct {
		args  []string
		calls string
	}{
		{[]string{"restart", "api", "--node-args=--harmony", "-s"}, "Change restart api node_args=--harmony"},
		{[]string{"reload", "worker", "--name", "jobs", "--no-autorestart", "-s"}, "Change reload worker autorestart=false,name=jobs"},
		{[]string{"restart", "api", "--node-args=null", "--max-memory-restart", "300M", "-s"}, "Change restart api max_memory_restart=300M,node_args=null"},
		{[]string{"start", "0", "--name=web", "-s"}, "Change restart 0 name=web"},
		{[]string{"restart", "api", "--watch", "-s"}, "Change restart api toggle-watch "}, // PM2 toggles
		{[]string{"reload", "api", "--watch=src,lib", "-s"}, "Change reload api watch=src lib"},
		{[]string{"start", "api", "--watch", "-s"}, "List; Change restart api watch=true"},
	} {
		e := newTestEnv(t)
		if code := e.run(c.args...); code != 0 || e.c.Calls() != c.calls {
			t.Errorf("tend %s: exit %d, calls %q, want %q: %s", strings.Join(c.args, " "), code, e.c.Calls(), c.calls, e.errOut)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"start", "api", "-i", "3"}, "tend: tend start api takes an app's settings, not --instances: start the script or the config again with it (tend scale for instances)\n"},
		{[]string{"restart", "eco.json", "--name", "x"}, "tend: settings flags go with an app (tend restart <name|id> --name …); a config's apps take their settings from the file\n"},
	} {
		e := newTestEnv(t)
		if code := e.run(c.args...); code != ExitUsage || e.errOut.String() != c.want || strings.Contains(e.c.Calls(), "Change") {
			t.Errorf("tend %s: exit %d, stderr %q, calls %q", strings.Join(c.args, " "), code, e.errOut, e.c.Calls())
		}
	}
}
