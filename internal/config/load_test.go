package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Load: what the daemon takes from a config, and errors that name the file as given, the line,
// the app and the key.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.sh"), []byte("#!/bin/sh\n"), 0o755)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	env := map[string]string{"PATH": "/usr/bin:/bin", "SHELL_ONLY": "1"}
	p := write("ok.json", `{"apps": [{"name": "a", "script": "a.sh", "env": {"X": "1"}, "env_prod": {"X": "2"}, "append_env_to_name": true, "vizion": false},
		{"name": "b", "script": "a.sh", "watch": true}]}`)
	apps, warns, err := Load(p, LoadOptions{Environ: env, EnvName: "prod", Only: []string{"a"}, Display: "ok.json"})
	if err != nil || len(apps) != 1 || apps[0].Name != "a-prod" || apps[0].Env["X"] != "2" || apps[0].Env["SHELL_ONLY"] != "1" ||
		!reflect.DeepEqual(apps[0].ConfigEnv, map[string]string{"X": "2"}) {
		t.Fatalf("apps %+v, err %v", apps, err)
	}
	// The selected app's warnings only: b's watch is not said.
	if !reflect.DeepEqual(warns, []string{"note: ok.json: vizion accepted; no effect in tend"}) {
		t.Fatalf("warnings %q", warns)
	}
	for _, tc := range []struct {
		path string
		o    LoadOptions
		want string
	}{
		{write("miss.json", "{\"apps\": [\n {\"name\": \"m\",\n  \"script\": \"nope.sh\"}]}"), LoadOptions{Environ: env, Display: "miss.json"}, `config file miss.json:3: apps[0] "m": script not found`},
		{write("dup.yaml", "apps:\n  - name: d\n    script: a.sh\n  - name: d\n    script: a.sh\n"), LoadOptions{Environ: env, Display: "dup.yaml"}, `config file dup.yaml:4: apps[1] "d": the name "d" is apps[0]'s too`},
		{"-", LoadOptions{Stdin: []byte(`{"apps": [`), Dir: dir}, "config file (stdin):1:10 is not valid JSON"},
		{p, LoadOptions{Only: []string{"a", "zz"}, Display: "ok.json"}, "--only a,zz: ok.json has no app named zz (it has a, b)"},
	} {
		_, _, err := Load(tc.path, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "invalid:") != 1 || !strings.HasPrefix(err.Error(), "invalid: ") {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
	// stop and delete act on the names start gave.
	refs, err := Refs(p, LoadOptions{EnvName: "prod"})
	want := []AppRef{{"a-prod", filepath.Join(dir, "a.sh")}, {"b", filepath.Join(dir, "a.sh")}}
	if err != nil || !reflect.DeepEqual(refs, want) {
		t.Fatalf("refs %q %v", refs, err)
	}
}

// --env <target> puts deploy.<target>.env under the app's env, and env_<target> over it, in
// PM2's order (PM2's env-refresh.sh).
func TestDeployEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eco.json")
	os.WriteFile(path, []byte(`{"apps": [{"name": "a", "script": "/bin/true", "env": {"B": "app"}, "env_production": {"C": "env_production"}}],
  "deploy": {"production": {"user": "node", "env": {"A": "deploy", "B": "deploy", "C": "deploy"}}}}`), 0o644)
	apps, _, err := Load(path, LoadOptions{EnvName: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if e := apps[0].Env; e["A"] != "deploy" || e["B"] != "app" || e["C"] != "env_production" {
		t.Errorf("env %v", e)
	}
	apps, _, _ = Load(path, LoadOptions{})
	if _, ok := apps[0].Env["A"]; ok {
		t.Errorf("deploy env without --env: %v", apps[0].Env)
	}
}
