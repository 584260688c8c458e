package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestEcosystemGolden")

// TestEcosystemGolden reads the collection of ecosystem files written the way PM2's docs and
// popular projects write them (test/testdata/ecosystems, one folder each) and compares the apps
// tend makes of them, resolved as start resolves them, and what it says about their keys, with
// the golden file beside each (go test -run EcosystemGolden -update rewrites them).
func TestEcosystemGolden(t *testing.T) {
	root, err := filepath.Abs("../../test/testdata/ecosystems")
	if err != nil {
		t.Fatal(err)
	}
	// What varies from machine to machine is fixed: the CPU count, the interpreters on PATH (all
	// found in bin), and what a JS config reads from the environment.
	cpus = func() int { return 4 }
	t.Cleanup(func() { cpus = CPUCount })
	bin := t.TempDir()
	for _, b := range []string{"node", "python3", "bash", "npm", "bun"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"NODE_ENV", "WEB_CONCURRENCY", "BILLING_PORT", "BILLING_DATABASE_URL", "BILLING_TZ"} {
		t.Setenv(k, "")
	}
	environ := map[string]string{"PATH": bin, "HOME": "/home/u", "SECRET_TOKEN": "s"}
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	_, haveNode := exec.LookPath("node")
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(root, d.Name())
		file := configIn(t, dir)
		t.Run(d.Name(), func(t *testing.T) {
			if data, _ := os.ReadFile(file); haveNode != nil && (strings.Contains(filepath.Ext(file), "js") && !json.Valid(data)) {
				t.Skip("node is not installed") // a JS config, or a .json file written as JavaScript
			}
			n++
			got := render(t, file, environ)
			got = bytes.ReplaceAll(got, []byte(root), []byte("$FIXTURES"))
			got = bytes.ReplaceAll(got, []byte(bin), []byte("$BIN"))
			golden := filepath.Join(dir, "tend.golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./internal/config -run EcosystemGolden -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: the apps differ from %s; got:\n%s", file, golden, got)
			}
		})
	}
	if n == 0 {
		t.Fatal("no fixture was read")
	}
}

// configIn is the one config file of a fixture folder (a package.json is a manifest there).
func configIn(t *testing.T, dir string) string {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() && e.Name() != "package.json" && e.Name() != "tend.golden.json" && IsConfigFile(e.Name()) {
			return filepath.Join(dir, e.Name())
		}
	}
	t.Fatalf("no config file in %s", dir)
	return ""
}

// render is the apps of a config as tend starts them (the environment under each app's, as
// the CLI merges it), and the keys it said something about.
func render(t *testing.T, file string, environ map[string]string) []byte {
	specs, err := LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type app struct {
		Spec      AppSpec                      `json:"spec"`
		EnvFor    map[string]map[string]string `json:"env_for,omitempty"`
		AppendEnv bool                         `json:"append_env_to_name,omitempty"`
		Unknown   []string                     `json:"unknown_keys,omitempty"`
		NoEffect  []string                     `json:"no_effect_keys,omitempty"`
	}
	var out []app
	for _, s := range specs {
		a := app{EnvFor: s.EnvFor, AppendEnv: s.AppendEnvToName, Unknown: s.IgnoredKeys, NoEffect: s.InertKeys}
		s.ConfigEnv = s.Env
		s.Env = MergeEnv(s.FilterEnv.Apply(environ), s.Env)
		if err := Resolve(&s, s.Cwd); err != nil {
			t.Fatalf("app %q: %v", s.Name, err)
		}
		a.Spec = s
		out = append(out, a)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}
