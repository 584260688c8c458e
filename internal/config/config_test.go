package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseValues(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{{"1600", 1600 * time.Millisecond, false}, {"10s", 10 * time.Second, false}, {"5m", 5 * time.Minute, false},
		{"250ms", 250 * time.Millisecond, false}, {"-5", 0, true}, {"abc", 0, true}, {"", 0, true}} {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tt.in, got, err)
		}
	}
	cpus := CPUCount()
	for _, tt := range []struct {
		in   string
		want int
		bad  bool
	}{{"4", 4, false}, {"max", cpus, false}, {"0", cpus, false}, {"-1", max(cpus-1, 1), false},
		{"abc", cpus, false}, {"1.5", 1, false}, {"2.7", 2, false}, {"-99", 1, false}, {"many", cpus, false}, {"", cpus, false}} {
		got, _, err := ParseInstances(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseInstances(%q) = %v, %v", tt.in, got, err)
		}
	}
	for _, s := range []string{"SIGINT", "INT", "int", "2", "SIGUSR2"} {
		if _, err := ParseSignal(s); err != nil {
			t.Errorf("ParseSignal(%q): %v", s, err)
		}
	}
	for _, s := range []string{"SIGNOPE", "0", "99", ""} {
		if _, err := ParseSignal(s); err == nil {
			t.Errorf("ParseSignal(%q) should fail", s)
		}
	}
	if got := SplitArgs(`-a "b c" 'd e' f`); !reflect.DeepEqual(got, []string{"-a", "b c", "d e", "f"}) {
		t.Errorf("SplitArgs = %q", got)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("#!/bin/sh\n"), mode)
		return p
	}
	write("app.js", 0o644)
	write("app.py", 0o644)
	write("run.sh", 0o644)
	write("bin", 0o755)
	write("noexec", 0o644)
	write("app.ts", 0o644)
	path := os.Getenv("PATH")
	resolve := func(script, interp string) (AppSpec, error) {
		s := Defaults()
		s.Script, s.Interpreter = script, interp
		s.Env = map[string]string{"PATH": path}
		err := Resolve(&s, dir)
		return s, err
	}
	for _, tt := range []struct{ script, label, name string }{
		{"app.js", "node", "app"}, {"app.py", "python3", "app"}, {"run.sh", "bash", "run"}, {"bin", "none", "bin"},
	} {
		s, err := resolve(tt.script, "")
		if err != nil || s.InterpreterLabel != tt.label || s.Name != tt.name || s.Script != filepath.Join(dir, tt.script) {
			t.Errorf("%s: label %q name %q script %q err %v", tt.script, s.InterpreterLabel, s.Name, s.Script, err)
		}
	}
	if s, _ := resolve("app.js", ""); !s.NodeIPC {
		t.Error("node apps get the IPC channel")
	}
	if s, _ := resolve("app.py", ""); s.Env["PYTHONUNBUFFERED"] != "1" {
		t.Error("python apps run unbuffered")
	}
	if s, err := resolve("npm run start", ""); err != nil || !s.ScriptIsCommand || s.Name != "npm" ||
		!reflect.DeepEqual(s.Command()[1:], []string{"-c", "npm run start"}) {
		t.Errorf("command line: %+v %v", s.Command(), err)
	}
	if s, err := resolve("sleep", ""); err != nil || !strings.HasSuffix(s.Script, "/sleep") || s.InterpreterLabel != "none" {
		t.Errorf("command on PATH: %q %v", s.Script, err)
	}
	if s, err := resolve("bin", "none"); err != nil || s.Command()[0] != filepath.Join(dir, "bin") {
		t.Errorf("interpreter none: %v %v", s.Command(), err)
	}
	for _, tt := range []struct{ script, interp, msg string }{
		{"missing.js", "", "script not found: " + filepath.Join(dir, "missing.js")},
		{"noexec", "", "is not executable; chmod +x it or pass --interpreter"},
		{"app.js", "no-such-interpreter", `interpreter "no-such-interpreter"`},
		{".", "", "is a directory"},
	} {
		_, err := resolve(tt.script, tt.interp)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %v, want one containing %q", tt.script, err, tt.msg)
		}
	}
	s := Defaults()
	s.Script, s.Env = "app.ts", map[string]string{"PATH": "/nonexistent"}
	if err := Resolve(&s, dir); err == nil || !strings.Contains(err.Error(), "bun") {
		t.Errorf("a .ts file without bun should name bun: %v", err)
	}
	s = Defaults()
	s.Script, s.Instances, s.ExecMode, s.Env = "app.js", 2, "", map[string]string{"PATH": path}
	if err := Resolve(&s, dir); err != nil || s.ExecMode != ClusterMode {
		t.Errorf("-i with node means cluster mode: %v %v", s.ExecMode, err)
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"", "all", "a/b", "a\nb"} {
		if ValidName(n) == nil {
			t.Errorf("name %q should be refused", n)
		}
	}
	for _, n := range []string{"api", "api-2", "web.v2", "455"} { // PM2 takes a number as a name (#1937)
		if err := ValidName(n); err != nil {
			t.Errorf("name %q: %v", n, err)
		}
	}
}

func TestParseApps(t *testing.T) {
	dir := t.TempDir()
	specs, err := ParseApps([]byte(`{"apps": [
		{"name": "a", "script": "a.js", "args": "--x 1", "env": {"N": 1}, "instances": "max", "kill_timeout": 3000, "min_uptime": "10s"},
		{"script": "b.py", "args": ["--y", 2], "cwd": "sub", "exec_mode": "fork", "autorestart": false, "out_file": "/dev/null", "port": 8080}
	]}`), filepath.Join(dir, "apps.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := specs[0], specs[1]
	if a.Name != "a" || !reflect.DeepEqual(a.Args, []string{"--x", "1"}) || a.Env["N"] != "1" ||
		a.Instances != CPUCount() || a.ExecMode != "" || a.KillTimeout != 3*time.Second || a.MinUptime != 10*time.Second || a.Cwd != dir {
		t.Errorf("app a: %+v", a)
	}
	if !reflect.DeepEqual(b.Args, []string{"--y", "2"}) || b.Cwd != filepath.Join(dir, "sub") || b.ExecMode != ForkMode ||
		b.Autorestart || b.OutFile != "/dev/null" || len(b.Ports) != 1 || b.Ports[0].Port != 8080 {
		t.Errorf("app b: %+v", b)
	}
	for _, bad := range []string{`{`, `{"apps": []}`, `{"apps": [{"name": "x"}]}`, `{"apps": [{"script": 1, "env": 3}]}`,
		`{"apps": [{"script": "a", "autorestart": "yes"}]}`} {
		if _, err := ParseApps([]byte(bad), "x.json"); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want an invalid error, got %v", bad, err)
		}
	}
}

func TestIsConfigFile(t *testing.T) {
	for f, want := range map[string]bool{"ecosystem.config.js": true, "apps.json": true, "x.config.mjs": true, "app.js": false, "ecosystem.js": false} {
		if IsConfigFile(f) != want {
			t.Errorf("IsConfigFile(%q) != %v", f, want)
		}
	}
}

// A key tend does not know is ignored and said (with a near miss named); PM2's keys that do
// nothing in tend are said apart; keys a later release acts on are parsed and named as pending.
func TestIgnoredKeys(t *testing.T) {
	specs, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "watch": true, "max_memory_restart": "200M", "env_production": {},
		"name": "a", "autorestrat": true, "vizion": false, "pmx": true, "shiny": 1}]}`), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if !reflect.DeepEqual(s.IgnoredKeys, []string{"autorestrat (did you mean autorestart?)", "shiny"}) {
		t.Errorf("ignored keys %q", s.IgnoredKeys)
	}
	if !reflect.DeepEqual(s.InertKeys, []string{"pmx", "vizion"}) {
		t.Errorf("inert keys %q", s.InertKeys)
	}
	if s.MaxMemoryRestart != 200<<20 || !reflect.DeepEqual(s.Watch, []string{"."}) {
		t.Errorf("max_memory_restart %d, watch %q", s.MaxMemoryRestart, s.Watch)
	}
}

// env_<name> blocks are kept by name for --env; one that is not an object is an error.
func TestEnvBlocks(t *testing.T) {
	specs, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "env": {"A": "1", "B": "base"}, "env_production": {"B": "prod", "N": 3}, "env_staging": {}}]}`), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"production": {"B": "prod", "N": "3"}, "staging": {}}
	if got := specs[0].EnvFor; !reflect.DeepEqual(got, want) {
		t.Fatalf("env blocks %v, want %v", got, want)
	}
	if _, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "env_production": "x"}]}`), "x.json"); err == nil || !strings.Contains(err.Error(), "env_production must be an object") {
		t.Fatalf("err = %v", err)
	}
}

func TestCgroupCPUs(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// cgroup v2: a 1.5 CPU quota on the parent counts as 2; the child's own "max" is no limit.
	write("self-v2", "0::/kubepods/pod1\n")
	write("fs/kubepods/cpu.max", "150000 100000\n")
	write("fs/kubepods/pod1/cpu.max", "max 100000\n")
	if n := cgroupCPUs(filepath.Join(root, "self-v2"), filepath.Join(root, "fs")); n != 2 {
		t.Errorf("v2 quota 1.5 CPUs: got %d, want 2", n)
	}
	// cgroup v1: cfs quota -1 means none.
	write("self-v1", "4:memory:/x\n1:cpu,cpuacct:/docker/abc\n")
	write("fs1/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n")
	write("fs1/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
	if n := cgroupCPUs(filepath.Join(root, "self-v1"), filepath.Join(root, "fs1")); n != 1 {
		t.Errorf("v1 quota 0.5 CPU: got %d, want 1", n)
	}
	write("self-none", "0::/\n")
	if n := cgroupCPUs(filepath.Join(root, "self-none"), filepath.Join(root, "nothing")); n != 0 {
		t.Errorf("no quota: got %d, want 0", n)
	}
}

// A key one or two edits from one tend knows is named with it; a JSON error says where.
func TestTyposAndJSONPositions(t *testing.T) {
	specs, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "autorestrat": false, "instaces": 2, "zzzzzz": 1}]}`), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"autorestrat (did you mean autorestart?)", "instaces (did you mean instances?)", "zzzzzz"}
	if got := specs[0].IgnoredKeys; !reflect.DeepEqual(got, want) {
		t.Fatalf("ignored keys %q, want %q", got, want)
	}
	for _, tt := range []struct{ data, where string }{
		{"{\"apps\": [\n  {\"script\": \"a.js\",,\n}]}", "x.json:2:21 is not valid JSON"},
		{`{"apps": [{"script": "a.js"`, "x.json:1:27 is not valid JSON: unexpected EOF"},
	} {
		if _, err := ParseApps([]byte(tt.data), "x.json"); err == nil || !strings.Contains(err.Error(), tt.where) {
			t.Errorf("%q: err = %v, want %q", tt.data, err, tt.where)
		}
	}
}

// A JS config that never finishes is stopped after EvalTimeout, and the error says so.
func TestJSConfigThatNeverFinishes(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	defer func(d time.Duration) { EvalTimeout = d }(EvalTimeout)
	EvalTimeout = 300 * time.Millisecond
	path := filepath.Join(t.TempDir(), "ecosystem.config.js")
	os.WriteFile(path, []byte("setInterval(() => {}, 1000); module.exports = {apps: [{script: 'a.js'}]};\n"), 0o644)
	_, err := LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), "node did not finish within 300ms") {
		t.Fatalf("err = %v", err)
	}
}

// An env value that is an object or a list goes into the environment as its JSON, as PM2's
// JSON.stringify puts it (PM2's env-refresh.sh greps {"HEYYYY":true}).
func TestEnvValueThatIsAnObject(t *testing.T) {
	specs, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "env": {"DB": {"host": "x", "on": true}, "HOSTS": ["a", "b"]}}]}`), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := specs[0].Env; got["DB"] != `{"host":"x","on":true}` || got["HOSTS"] != `["a","b"]` {
		t.Errorf("env %v", got)
	}
}
