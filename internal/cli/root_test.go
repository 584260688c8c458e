package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/errdefs"
)

func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{usagef("bad"), ExitUsage},
		{fmt.Errorf("x: %w", config.ErrInvalid), ExitUsage},
		{&client.Error{Kind: errdefs.KindNotFound}, ExitNotFound},
		{&client.Error{Kind: errdefs.KindInvalid}, ExitUsage},
		{&client.Error{Kind: errdefs.KindFailed}, ExitFailure},
		{&client.Error{Kind: errdefs.KindInternal}, ExitFailure},
		{fmt.Errorf("%w: gone", errdefs.ErrUnreachable), ExitUnreachable},
		{notFoundf("no app"), ExitNotFound},
		{errors.Join(&client.Error{Kind: errdefs.KindNotFound}, errors.New("x")), ExitNotFound},
		{errors.New("anything else"), ExitFailure},
	} {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                           "plain",
		"invalid: app x: bad":             "app x: bad",
		"a failed\ninvalid: b is wrong\n": "a failed; b is wrong",
		"  \n x \n":                       "x",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every refusal is one line on stderr, "tend: " first, with the exit code of its kind, and
// nothing on stdout; the daemon is not asked.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" (see tend --help)`},
		{[]string{"start", "a.js", "b.js", "--name", "x"}, "--name names one app, and 2 scripts were given; start them one at a time to name them"},
		{[]string{"start", "a.js", "--max-restarts", "x"}, `invalid value "x" for --max-restarts: want a whole number (see tend start --help)`},
		{[]string{"start", "a.js", "--silent=maybe"}, `invalid value "maybe" for -s: want true or false (see tend start --help)`},
		{[]string{"start", "a.js", "--stop-exit-codes", "1,a"}, `invalid value "1,a" for --stop-exit-codes: want a whole number (see tend start --help)`},
		{[]string{"start", "a.js", "--bogus"}, "unknown flag: --bogus (see tend start --help)"},
		{[]string{"start", "a.js", "--name"}, "flag needs an argument: --name (see tend start --help)"},
		{[]string{"start", "a.js", "--name="}, "--name is empty; give the app a name"},
		{[]string{"start"}, "nothing to start: give a script, e.g. tend start app.js"},
		{[]string{"stop"}, "requires at least 1 arg(s), only received 0 (see tend stop --help)"},
		{[]string{"describe"}, "accepts 1 arg(s), received 0 (see tend describe --help)"},
		{[]string{"logs", "--lines", "-1"}, "--lines must not be negative, got -1"},
		{[]string{"logs", "--lines", "x"}, `invalid value "x" for --lines: want a whole number (see tend logs --help)`},
		{[]string{"--no-daemon", "ls"}, "--no-daemon goes with start (tend --no-daemon start app.js); for a foreground daemon alone, run tend daemon"},
		{[]string{"scale", "api"}, "scale takes an app name and a count, e.g. tend scale api 4 (got 1 arguments)"},
		{[]string{"scale", "api", "x"}, `instance count "x" must be a number, +N or -N`},
		{[]string{"scale", "api", "0"}, "scale api to 0: an app keeps at least 1 instance; to stop it, use tend stop api"},
		{[]string{"scale", "api", "2", "--foo"}, "unknown flag --foo for scale (see tend scale --help)"},
		{[]string{"scale", "api", "2", "--no-daemon"}, "--no-daemon works only with start: tend --no-daemon start <script>"},
		{[]string{"msg", "api", "notjson"}, `message "notjson" is not JSON; quote a string as '"hello"'`},
		{[]string{"sendSignal", "SIGNOPE", "api"}, `unknown signal "SIGNOPE" (try SIGINT, SIGTERM, SIGUSR2)`},
		{[]string{"restart", "api", "--env", "production"}, "--env production needs the config file that has env_production: tend restart <config> --env production"},
		{[]string{"jlist", "extra"}, `unknown command "extra" for "tend jlist" (see tend jlist --help)`},
		{[]string{"start", "/nonexistent/app.js"}, "script not found: /nonexistent/app.js"},
	} {
		e := newTestEnv(t)
		e.c.running = false
		code := e.run(tt.args...)
		if want := "tend: " + tt.stderr + "\n"; code != ExitUsage || e.errOut.String() != want || e.out.String() != "" {
			t.Errorf("tend %s: exit %d, stderr %q, stdout %q; want exit 2, stderr %q", strings.Join(tt.args, " "), code, e.errOut, e.out, want)
		}
		if calls := e.c.Calls(); calls != "" {
			t.Errorf("tend %s asked the daemon: %s", strings.Join(tt.args, " "), calls)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	e := newTestEnv(t)
	if code := e.run("--version"); code != 0 || e.out.String() != Version+"\n" {
		t.Errorf("--version: %d %q", code, e.out)
	}
	e = newTestEnv(t)
	if code := e.run(); code != ExitUsage || !strings.Contains(e.out.String(), "Available Commands:") {
		t.Errorf("no arguments: %d %q", code, e.out)
	}
	e = newTestEnv(t)
	if code := e.run("scale", "-h"); code != 0 || !strings.Contains(e.out.String(), "tend scale <name> <N|+N|-N>") {
		t.Errorf("scale -h: %d %q", code, e.out)
	}
	if e.c.Calls() != "" {
		t.Errorf("help asked the daemon: %s", e.c.Calls())
	}
}

func TestNewFactory(t *testing.T) {
	t.Setenv("TEND_HOME", "/tmp/tend-factory-test")
	t.Setenv("TEND_TIMEOUT", "250ms")
	f := NewFactory()
	if f.Home != "/tmp/tend-factory-test" || f.Cwd == "" || len(f.Environ) == 0 || f.IO.Out == nil {
		t.Fatalf("factory %+v", f)
	}
	c1, _ := f.Client()
	c2, _ := f.Client()
	p, ok := c1.(patient)
	uc, ok2 := p.API.(*client.Client)
	if !ok || !ok2 || c1 != c2 || uc.Timeout.String() != "250ms" || !uc.AutoStart || uc.Socket != "/tmp/tend-factory-test/tend.sock" {
		t.Fatalf("client %#v", c1)
	}
}

// Run builds only the command args name; the table it looks names up in must list every
// command of the whole tree under every name it answers to.
func TestCommandTableMatchesTheTree(t *testing.T) {
	e := newTestEnv(t)
	names := map[string]bool{}
	for _, c := range commands {
		for _, n := range c.names {
			if names[n] {
				t.Errorf("%q is listed twice", n)
			}
			names[n] = true
		}
	}
	for _, c := range NewCmdRoot(e.f).Commands() {
		for _, n := range append([]string{c.Name()}, c.Aliases...) {
			if !names[n] {
				t.Errorf("command %q answers to %q, which the table lacks", c.Name(), n)
			}
			delete(names, n)
		}
	}
	for n := range names {
		t.Errorf("the table lists %q, which no command answers to", n)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		e := newTestEnv(t)
		if code := e.run(args...); code != ExitOK || e.out.String() != Version+"\n" || e.errOut.String() != "" {
			t.Errorf("%v: exit %d, out %q, err %q", args, code, e.out.String(), e.errOut.String())
		}
	}
	// Through cobra, as before, when something follows.
	e := newTestEnv(t)
	if code := e.run("--version", "--silent"); code != ExitOK || e.out.String() != Version+"\n" {
		t.Errorf("exit %d, out %q", code, e.out.String())
	}
}

// completion prints a script for each shell; the script asks tend itself (__complete).
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		e := newTestEnv(t)
		if code := e.run("completion", sh); code != 0 || !strings.Contains(e.out.String(), "__complete") {
			t.Errorf("completion %s: exit %d, %.80q", sh, code, e.out)
		}
	}
	e := newTestEnv(t)
	if code := e.run("__complete", "rese"); code != 0 || !strings.Contains(e.out.String(), "reset\t") {
		t.Errorf("__complete rese: exit %d, %q", code, e.out)
	}
}

// A long reload says what it waits for; a quick one says nothing.
func TestPatientClient(t *testing.T) {
	defer func(d time.Duration) { slowAfter = d }(slowAfter)
	slowAfter = 10 * time.Millisecond
	e := newTestEnv(t)
	errOut := &signalWriter{said: make(chan struct{})}
	p := patient{slowFake{e.c, errOut.said}, errOut}
	if err := p.Action("reload", "api"); err != nil {
		t.Fatal(err)
	}
	if got := errOut.String(); got != "tend: waiting for api to reload (a new process online, then the old one done with its requests, one instance at a time)\n" {
		t.Errorf("slow reload said %q", got)
	}
	slowAfter = time.Hour
	var quiet syncBuffer
	if err := (patient{e.c, &quiet}).Action("stop", "api"); err != nil || quiet.String() != "" {
		t.Errorf("quick stop said %q (%v)", quiet.String(), err)
	}
}

// A start of many apps names five of them and counts the rest, on one line.
func TestSlowNoticeNamesFewApps(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{
		{2, "a0, a1"},
		{5, "a0, a1, a2, a3, a4"},
		{1000, "1000 apps (a0, a1, a2, a3, a4…)"},
	} {
		var ns []string
		for i := range tt.n {
			ns = append(ns, fmt.Sprintf("a%d", i))
		}
		if got := names(ns); got != tt.want {
			t.Errorf("names(%d apps) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
