package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every key of PM2's schema that tend acts on, under each of its aliases.
func TestKeysAndAliases(t *testing.T) {
	one := func(t *testing.T, app string) AppSpec {
		t.Helper()
		if !strings.Contains(app, `"exec"`) && !strings.Contains(app, `"cmd"`) && !strings.Contains(app, `"command"`) {
			app = `"script": "a.js", ` + app
		}
		specs, err := ParseApps([]byte(`{"apps": [{`+app+`}]}`), "/cfg/x.json")
		if err != nil {
			t.Fatal(err)
		}
		if len(specs[0].IgnoredKeys) > 0 {
			t.Fatalf("ignored %q", specs[0].IgnoredKeys)
		}
		return specs[0]
	}
	for _, tc := range []struct {
		app  string
		want func(AppSpec) any
		val  any
	}{
		{`"exec": "b.js"`, func(s AppSpec) any { return s.Script }, "b.js"},
		{`"cmd": "c.py"`, func(s AppSpec) any { return s.Script }, "c.py"},
		{`"command": "d.sh"`, func(s AppSpec) any { return s.Script }, "d.sh"},
		{`"exec_interpreter": "python3"`, func(s AppSpec) any { return s.Interpreter }, "python3"},
		{`"interpreterArgs": "-u -B"`, func(s AppSpec) any { return s.InterpreterArgs }, []string{"-u", "-B"}},
		{`"interpreter_args": ["--a"]`, func(s AppSpec) any { return s.InterpreterArgs }, []string{"--a"}},
		{`"node_args": "--max-old-space-size=300"`, func(s AppSpec) any { return s.InterpreterArgs }, []string{"--max-old-space-size=300"}},
		{`"out": "o.log", "err": "e.log"`, func(s AppSpec) any { return s.OutFile + " " + s.ErrFile }, "o.log e.log"},
		{`"output": "o.log", "err_log": "e.log"`, func(s AppSpec) any { return s.OutFile + " " + s.ErrFile }, "o.log e.log"},
		{`"out_log": "o.log", "err_file": "e.log", "log": "c.log"`, func(s AppSpec) any { return s.OutFile + s.ErrFile + s.LogFile }, "o.loge.logc.log"},
		{`"log_file": true`, func(s AppSpec) any { return s.LogFile }, LogFileDefault},
		{`"disable_logs": true, "log_file": "c.log"`, func(s AppSpec) any { return s.OutFile + s.ErrFile + s.LogFile }, "/dev/null/dev/null"},
		{`"combine_logs": true`, func(s AppSpec) any { return s.MergeLogs }, true},
		{`"time": true`, func(s AppSpec) any { return s.LogDateFormat }, "YYYY-MM-DDTHH:mm:ss"},
		{`"min_uptime": "10s", "restart_delay": 4000, "exp_backoff_restart_delay": 100`,
			func(s AppSpec) any { return []time.Duration{s.MinUptime, s.RestartDelay, s.ExpBackoffDelay} },
			[]time.Duration{10 * time.Second, 4 * time.Second, 100 * time.Millisecond}},
		{`"max_restarts": 10, "stop_exit_codes": [0, 2]`, func(s AppSpec) any { return []any{s.MaxRestarts, s.StopExitCodes} }, []any{10, []int{0, 2}}},
		{`"stop_exit_codes": 3`, func(s AppSpec) any { return s.StopExitCodes }, []int{3}},
		{`"shutdown_with_message": true`, func(s AppSpec) any { return s.ShutdownWithMessage }, true},
		{`"increment_var": "PORT", "env": {"PORT": 3000}`, func(s AppSpec) any { return s.IncrementVar }, "PORT"},
		{`"instance_var": "INSTANCE_ID"`, func(s AppSpec) any { return s.InstanceVar }, "INSTANCE_ID"},
		{`"append_env_to_name": true`, func(s AppSpec) any { return s.AppendEnvToName }, true},
		{`"source_map_support": true`, func(s AppSpec) any { return s.SourceMaps }, true},
		{`"filter_env": true`, func(s AppSpec) any { return *s.FilterEnv }, EnvFilter{All: true}},
		{`"filter_env": "SECRET"`, func(s AppSpec) any { return *s.FilterEnv }, EnvFilter{Keys: []string{"SECRET"}}},
		{`"filter_env": ["AWS_", "NPM"]`, func(s AppSpec) any { return *s.FilterEnv }, EnvFilter{Containing: []string{"AWS_", "NPM"}}},
		{`"filter_env": false`, func(s AppSpec) any { return s.FilterEnv == nil }, true},
		{`"cron": "0 3 * * *"`, func(s AppSpec) any { return s.CronRestart }, "0 3 * * *"},
		{`"cron_restart": "*/30 * * * * *"`, func(s AppSpec) any { return s.CronRestart }, "*/30 * * * * *"},
		{`"watch": ["src", "lib"], "ignore_watch": "node_modules", "watch_delay": 500`,
			func(s AppSpec) any { return []any{s.Watch, s.IgnoreWatch, s.WatchDelay} },
			[]any{[]string{"src", "lib"}, []string{"node_modules"}, 500 * time.Millisecond}},
		{`"watch": false`, func(s AppSpec) any { return s.Watch == nil }, true},
		{`"user": "root", "gid": "0"`, func(s AppSpec) any { return s.User + ":" + s.Group }, "root:0"},
		{`"uid": 0`, func(s AppSpec) any { return s.User }, "0"},
		{`"max_memory_restart": "1G"`, func(s AppSpec) any { return s.MaxMemoryRestart }, int64(1 << 30)},
		{`"max_memory_restart": 2048`, func(s AppSpec) any { return s.MaxMemoryRestart }, int64(2048)},
		{`"pid": "/run/a.pid", "log_type": "json"`, func(s AppSpec) any { return s.PidFile + " " + s.LogType }, "/run/a.pid json"},
	} {
		if got := tc.want(one(t, tc.app)); !reflect.DeepEqual(got, tc.val) {
			t.Errorf("%s: got %#v, want %#v", tc.app, got, tc.val)
		}
	}
	// PM2's keys that do nothing here are named apart, not offered as typos.
	s := one(t, `"vizion": false, "force": true, "kill_retry_time": 100, "watch_options": {"usePolling": true}`)
	if !reflect.DeepEqual(s.InertKeys, []string{"force", "kill_retry_time", "vizion", "watch_options"}) {
		t.Errorf("inert %q", s.InertKeys)
	}
}

// A wrong value names the file, the line of the key, the app and the key, in JSON and in YAML.
func TestKeyErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ file, body, want string }{
		{"a.json", "{\"apps\": [\n  {\"name\": \"ok\", \"script\": \"a.js\"},\n  {\"name\": \"api\",\n   \"script\": \"a.js\",\n   \"instances\": 100000}\n]}",
			`a.json:5: apps[1] "api": instances 100000 is more than`},
		{"b.json", "[{\"script\": \"a.js\",\n \"autorestart\": \"yes\"}]", `b.json:2: apps[0]: autorestart must be true or false, got "yes"`},
		{"d.yaml", "apps:\n  - name: web\n    script: a.js\n    env:\n      PORT: 80\n    cron_restart: \"61 * * * *\"\n",
			`d.yaml:6: apps[0] "web": cron_restart "61 * * * *" is not a cron expression`},
		{"e.yml", "apps:\n  - script: a.js\n    name: w\n  - name: x\n    script: a.js\n    max_memory_restart: lots\n",
			`e.yml:6: apps[1] "x": max_memory_restart "lots" must be a size`},
		{"f.yaml", "apps:\n  - name: nos\n    cwd: /tmp\n", `f.yaml:2: apps[0] "nos": script is missing`},
		{"g.json", "{\"apps\": {\"script\": \"a.js\",\n \"kill_signal\": \"SIGNOPE\"}}", `g.json:2: apps[0]: kill_signal unknown signal "SIGNOPE"`},
		{"h.json", "{\"apps\": [{\"script\": \"a.js\", \"increment_var\": \"PORT\",\n \"env\": {\"PORT\": \"x\"}}]}", `h.json:1: apps[0]: increment_var names PORT, whose value "x" in env is not a whole number`},
		{"i.json", "{\"apps\": [{\"script\": \"a.js\",\n \"uid\": \"no-such-user-here\"}]}", `i.json:2: apps[0]: uid "no-such-user-here": no such user on this machine`},
		{"j.json", "{\"apps\": [{\"script\": \"a.js\",\n \"log_type\": \"xml\"}]}", `j.json:2: apps[0]: log_type must be json or raw, got "xml"`},
		{"k.json", "{\"apps\": [{\"script\": \"a.js\",\n \"stop_exit_codes\": [\"zero\"]}]}", `k.json:2: apps[0]: stop_exit_codes must be exit codes from 0 to 255, got "zero"`},
		{"l.json", "{\"apps\": [{\"script\": \"a.js\",\n \"filter_env\": 3}]}", `l.json:2: apps[0]: filter_env must be true`},
	} {
		p := write(tc.file, tc.body)
		_, err := LoadFile(p)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v\nwant it to contain %q", tc.file, err, tc.want)
		}
	}
}

// filter_env keeps the caller's variables out of the app, as PM2's does: all of them, one by
// name, or every name containing a part.
func TestEnvFilter(t *testing.T) {
	env := map[string]string{"AWS_KEY": "k", "MY_AWS_X": "x", "SECRET": "s", "SECRET2": "s2", "HOME": "/h"}
	for _, tc := range []struct {
		f    *EnvFilter
		want []string
	}{
		{nil, []string{"AWS_KEY=k", "HOME=/h", "MY_AWS_X=x", "SECRET=s", "SECRET2=s2"}},
		{&EnvFilter{All: true}, []string{}},
		{&EnvFilter{Keys: []string{"SECRET"}}, []string{"AWS_KEY=k", "HOME=/h", "MY_AWS_X=x", "SECRET2=s2"}},
		{&EnvFilter{Containing: []string{"AWS_", "SEC"}}, []string{"HOME=/h"}},
	} {
		if got := EnvList(tc.f.Apply(env)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %q", tc.f, got)
		}
	}
}

// --update-env: the caller's new environment under the config's keys; a variable the old
// caller had and the new one has not is gone (PM2 keeps it: its #3486).
func TestUpdateEnv(t *testing.T) {
	s := AppSpec{
		Env:       map[string]string{"OLD": "1", "SHARED": "shell", "A": "config", "PATH": "/old"},
		ConfigEnv: map[string]string{"A": "config"},
		FilterEnv: &EnvFilter{Keys: []string{"TOKEN"}},
		Ports:     []Listen{{Port: 8080}}, ExecMode: ForkMode, InterpreterLabel: "none",
	}
	s.UpdateEnv(map[string]string{"SHARED": "new", "A": "shell", "PATH": "/new", "TOKEN": "t"})
	want := []string{"A=config", "PATH=/new", "PORT=8080", "SHARED=new"}
	if got := EnvList(s.Env); !reflect.DeepEqual(got, want) {
		t.Fatalf("env %q, want %q", got, want)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"300M": 300 << 20, "1G": 1 << 30, "512K": 512 << 10, "1024": 1024, "1.5G": 3 << 29, "200MB": 200 << 20, "10m": 10 << 20} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "-1M", "lots", "1T", "0"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// source_map_support gives a Node app --enable-source-maps, once; other runtimes get nothing.
func TestSourceMaps(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.js", "a.py"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	for script, want := range map[string]bool{"a.js": true, "a.py": false} {
		s := Defaults()
		s.Script, s.SourceMaps, s.Name = script, true, "x"
		s.Env = map[string]string{"PATH": os.Getenv("PATH")}
		s.Interpreter = map[string]string{"a.js": "node", "a.py": "python3"}[script]
		s.InterpreterArgs = []string{"--enable-source-maps"}[:0]
		if err := Resolve(&s, dir); err != nil {
			t.Skipf("%s: %v", script, err) // no node or python3 on PATH
		}
		if err := Resolve(&s, dir); err != nil {
			t.Fatal(err)
		}
		got := strings.Count(strings.Join(s.InterpreterArgs, " "), "--enable-source-maps")
		if (got == 1) != want || got > 1 {
			t.Errorf("%s: args %q", script, s.InterpreterArgs)
		}
	}
}

// A script with its .map beside it gets source maps, as PM2 detects them, unless
// disable_source_map_support says no.
func TestSourceMapsDetected(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.js"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "main.js.map"), []byte("{}"), 0o644)
	for _, off := range []bool{false, true} {
		s := Defaults()
		s.Script, s.Name, s.NoSourceMaps = "main.js", "x", off
		s.Env = map[string]string{"PATH": os.Getenv("PATH")}
		if err := Resolve(&s, dir); err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(s.InterpreterArgs, "--enable-source-maps"); got == off {
			t.Errorf("disable_source_map_support %v: args %q", off, s.InterpreterArgs)
		}
	}
}

// log_file: true is the combined log in the logs folder, named after the app (PM2's default).
func TestLogFileDefault(t *testing.T) {
	s := AppSpec{Name: "api", LogFile: LogFileDefault, Cwd: "/srv", ExecMode: ForkMode, Instances: 1}
	if _, _, c := s.LogPaths("/home/u/.tend/logs", 0); c != "/home/u/.tend/logs/api.log" {
		t.Fatalf("combined %q", c)
	}
	s.ExecMode = ClusterMode
	if _, _, c := s.LogPaths("/l", 3); c != "/l/api-3.log" {
		t.Fatalf("combined %q", c)
	}
}

// In a JS config the line of a key is found when the key is written once in the file; a key
// several apps write gets no line rather than a wrong one.
func TestJSKeyLines(t *testing.T) {
	src := []byte("module.exports = {\n  apps: [{\n    name: 'a',\n    'instances': 'abc',\n    env: { PORT: 1 },\n  }, {\n    name: 'b',\n  }],\n};\n")
	loc := jsLocator(src)
	for key, want := range map[string]int{"instances": 4, "env.PORT": 5, "name": 0, "script": 0, "": 0} {
		if got := loc(0, key); got != want {
			t.Errorf("%q: line %d, want %d", key, got, want)
		}
	}
}

// The start limit and the errored retry, as a config sets them.
func TestStartLimitKeys(t *testing.T) {
	for app, want := range map[string][3]any{
		`"start_limit_burst": 5, "start_limit_interval": "30s", "errored_retry": "1m"`: {5, 30 * time.Second, time.Minute},
		`"start_limit_burst": 0, "errored_retry": "never"`:                             {-1, time.Duration(0), time.Duration(-1)},
		`"errored_retry": 0`: {0, time.Duration(0), time.Duration(-1)},
	} {
		specs, err := ParseApps([]byte(`{"apps": [{"script": "a.js", `+app+`}]}`), "x.json")
		if err != nil {
			t.Fatal(err)
		}
		s := specs[0]
		if got := [3]any{s.StartLimitBurst, s.StartLimitInterval, s.ErroredRetry}; got != want {
			t.Errorf("%s: %v, want %v", app, got, want)
		}
	}
	if _, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "start_limit_burst": "lots"}]}`), "x.json"); err == nil || !strings.Contains(err.Error(), "start_limit_burst must be") {
		t.Errorf("a bad burst: %v", err)
	}
}

// Names carry no control characters (ESC would reach every terminal that lists them) and are
// UTF-8, wherever they come from: the spec check is the daemon's too.
func TestNamesArePrintable(t *testing.T) {
	for _, bad := range []string{"a\x1b[2Jb", "cr\rname", "tab\tname", "nul\x00", "bad\xffutf8", "rtl\u202ename", "zero\u200bwidth"} {
		if err := ValidName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"api", "café-ünïcode", "web.1", "日本語"} {
		if err := ValidName(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	s := Defaults()
	s.Name, s.Script, s.Cwd, s.Namespace = "ok", "/bin/true", "/", "ns\x1b"
	if err := s.Validate(); err == nil {
		t.Error("a namespace with ESC accepted")
	}
}

// Secrets are masked by their variable's name, and passwords inside URLs; the words are the
// user's to change.
func TestMasked(t *testing.T) {
	words, err := ParseSecretWords("token, mycorp")
	if err != nil || Masked("MYCORP_ID", "x", words) != "********" || Masked("DB_PASSWORD", "p", words) != "p" {
		t.Fatalf("custom words %q %v", words, err)
	}
	if _, err := ParseSecretWords("a-b"); err == nil {
		t.Fatal("a word with a dash accepted")
	}
	for _, tc := range []struct{ k, v, want string }{
		{"GITHUB_TOKEN", "ghp_x", "********"}, {"DB_PASSWORD", "p", "********"}, {"AWS_SECRET_ACCESS_KEY", "s", "********"},
		{"apiKey", "k", "********"}, {"KEYBOARD", "us", "us"}, {"PWD", "/srv", "/srv"}, {"PORT", "80", "80"},
		{"DATABASE_URL", "postgres://app:s3cr%40t@db:5432/app", "postgres://app:********@db:5432/app"},
		{"REDIS_URL", "redis://db:6379", "redis://db:6379"}, {"EMPTY_TOKEN", "", ""},
	} {
		if got := Masked(tc.k, tc.v, nil); got != tc.want {
			t.Errorf("%s=%s: %q, want %q", tc.k, tc.v, got, tc.want)
		}
	}
}

// tend.log shows a command line with its secret arguments masked.
func TestMaskedArgs(t *testing.T) {
	got := strings.Join(MaskedArgs([]string{"node", "app.js", "--db-password=hunter2", "--token", "t0k", "--port", "80",
		"API_KEY=k", "postgres://u:pw@db/x", "--verbose"}, nil), " ")
	want := "node app.js --db-password=******** --token ******** --port 80 API_KEY=******** postgres://u:********@db/x --verbose"
	if got != want {
		t.Fatalf("%s\nwant %s", got, want)
	}
}

// tend set's keys in one place: secret_keys replaces or, with +, adds to the words in effect;
// unset brings the defaults back; the rest are rotation's.
func TestSettingsSet(t *testing.T) {
	var s Settings
	if _, err := s.Set("secret_keys", "+mycorp"); err != nil || !slices.Contains(s.SecretWords(), "MYCORP") || !slices.Contains(s.SecretWords(), "TOKEN") {
		t.Fatalf("+MYCORP: %q %v", s.SecretWords(), err)
	}
	if _, err := s.Set("secret_keys", "mycorp"); err != nil || !reflect.DeepEqual(s.SecretWords(), []string{"MYCORP"}) {
		t.Fatalf("MYCORP: %q %v", s.SecretWords(), err)
	}
	if key, _ := s.Unset("secret_keys"); key != "secret_keys" || !reflect.DeepEqual(s.SecretWords(), DefaultSecretWords) {
		t.Fatalf("unset: %q", s.SecretWords())
	}
	if key, err := s.Set("pm2-logrotate:retain", "4"); key != "retain" || err != nil || *s.Rotate.Retain != 4 {
		t.Fatalf("retain: %q %v", key, err)
	}
	if own, ok := SettingName("pm2-logrotate:workerInterval"); !ok || own != "" {
		t.Fatalf("workerInterval: %q %v", own, ok)
	}
}

// env keys whose values are numbers or booleans are remembered, for jlist to show them so.
func TestEnvTyped(t *testing.T) {
	specs, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "env": {"PORT": 3000, "ON": true, "S": "x"}, "env_production": {"N": 2}}]}`), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := specs[0].EnvTyped; !slices.Equal(got, []string{"N", "ON", "PORT"}) {
		t.Errorf("EnvTyped %q", got)
	}
}
