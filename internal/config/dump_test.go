package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A dump PM2 7.0.4 wrote (test/testdata): a cluster app of 2 instances and a stopped fork app.
func TestParsePM2Dump(t *testing.T) {
	data, err := os.ReadFile("../../test/testdata/pm2-7.0.4-dump.pm2")
	if err != nil {
		t.Fatal(err)
	}
	apps, err := ParseDump(data, "dump.pm2")
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 {
		t.Fatalf("%d apps: %+v", len(apps), apps)
	}
	web, nap := apps[0], apps[1]
	if web.Spec.Name != "web" || web.Spec.Instances != 2 || len(web.Instances) != 2 || web.Instances[1].Index != 1 ||
		web.Instances[0].ID != -1 || web.Spec.Env["PORT"] != "3941" || !strings.HasSuffix(web.Spec.Script, "examples/cluster-node/app.js") || web.Resolved {
		t.Errorf("web: %+v", web)
	}
	for _, own := range []string{"web", "unique_id", "PM2_USAGE"} {
		if _, ok := web.Spec.Env[own]; ok {
			t.Errorf("PM2's own variable %s kept", own)
		}
	}
	if nap.Spec.Name != "nap" || nap.Instances[0].Status != "stopped" || nap.Spec.Env["GREETING"] != "hi" || nap.Spec.Script != "/bin/sleep" {
		t.Errorf("nap: %+v", nap)
	}
}

func TestParseDumpRefuses(t *testing.T) {
	for data, want := range map[string]string{
		`[{"name": "a", "pm_exec_path": "/bin/sleep"`: "cut short, or not a dump",
		`{"apps": []}`: "cut short, or not a dump",
		`[{"name": "a", "_tend": {"v": 9, "spec": {}, "pm_id": 0}}]`: "written by a newer tend (dump version 9",
		`[{"name": "a"}]`: "script is missing",
	} {
		if _, err := ParseDump([]byte(data), "d.pm2"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", data, err, want)
		}
	}
}

// A YAML config reads as its JSON would; a YAML error says file:line:column.
func TestYAMLConfig(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/apps.yml"
	os.WriteFile(path, []byte("apps:\n  - name: web\n    script: app.js\n    instances: 2\n    env:\n      PORT: 3000\n    env_production:\n      NODE_ENV: production\n"), 0o644)
	specs, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := specs[0]; s.Name != "web" || s.Instances != 2 || s.Env["PORT"] != "3000" || s.EnvFor["production"]["NODE_ENV"] != "production" || s.Script != "app.js" || s.Cwd != dir {
		t.Fatalf("%+v", s)
	}
	os.WriteFile(path, []byte("apps:\n  - name: web\n   script: x\n"), 0o644)
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), "apps.yml:3:4 is not valid YAML") {
		t.Fatalf("err = %v", err)
	}
}

func TestProcfile(t *testing.T) {
	specs, err := ParseProcfile([]byte("# comment\n\nweb: PORT=3000 node app.js\nworker:   ./bin/work --fast\nclock: clockd\n"), "/srv/Procfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 || specs[0].Name != "web" || specs[0].Script != "PORT=3000 node app.js" || specs[1].Script != "./bin/work --fast" ||
		specs[2].Name != "clock" || specs[0].Cwd != "/srv" {
		t.Fatalf("%+v", specs)
	}
	for data, want := range map[string]string{
		"web node app.js\n": "/srv/Procfile:1: \"web node app.js\" is not `type: command`",
		"web: a\nweb: b\n":  "/srv/Procfile:2: web is already the type of line 1",
		"# nothing\n":       "has no process types",
		"web: a\n: b\n":     "/srv/Procfile:2:",
	} {
		if _, err := ParseProcfile([]byte(data), "/srv/Procfile"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", data, err, want)
		}
	}
	if !IsConfigFile("/srv/Procfile") || IsConfigFile("/srv/procfile.txt") {
		t.Error("IsConfigFile and Procfile")
	}
}

// env_file: a dotenv file beside the config, its values under env's; a missing file or a line
// that does not parse is an error naming the file and the line.
func TestEnvFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/.env", []byte("# db\nDB_URL=postgres://x # the dev one\nexport MODE=file\nQUOTED=\"a b\"\nLIT='$HOME \\n'\nMULTI=\"one\ntwo\\tX\"\nEMPTY=\n"), 0o600)
	specs, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "env_file": ".env", "env": {"MODE": "config"}}]}`), dir+"/apps.json")
	if err != nil {
		t.Fatal(err)
	}
	if e := specs[0].Env; e["DB_URL"] != "postgres://x" || e["MODE"] != "config" || e["QUOTED"] != "a b" || e["LIT"] != `$HOME \n` ||
		e["MULTI"] != "one\ntwo\tX" || e["EMPTY"] != "" {
		t.Fatalf("env %v", e)
	}
	if len(specs[0].IgnoredKeys) != 0 || specs[0].EnvFor != nil {
		t.Fatalf("env_file taken for something else: %v %v", specs[0].IgnoredKeys, specs[0].EnvFor)
	}
	os.WriteFile(dir+"/bad.env", []byte("A=1\nB-C=2\nD=3\n"), 0o600)
	os.WriteFile(dir+"/open.env", []byte("A=1\nB=\"never closed\nC=3\n"), 0o600)
	for file, want := range map[string]string{
		"missing.env": "env_file " + dir + "/missing.env does not exist",
		"bad.env":     "env_file " + dir + "/bad.env:2: \"B-C=2\" is not KEY=value",
		"open.env":    "env_file " + dir + "/open.env:2: the \" of B is never closed",
	} {
		_, err := ParseApps([]byte(`{"apps": [{"script": "a.js", "env_file": "`+file+`"}]}`), dir+"/apps.json")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", file, err, want)
		}
	}
}

// An entry tend wrote is read from _tend while its PM2 fields are as tend wrote them; once PM2
// has resurrected and saved it again (keeping _tend, with its own fields changed), PM2's fields
// are what comes back, so an edit made on PM2's side is not lost.
func TestDumpSumNoticesPM2(t *testing.T) {
	fields := map[string]json.RawMessage{
		"name": json.RawMessage(`"api"`), "pm_exec_path": json.RawMessage(`"/bin/sleep"`),
		"pm_cwd": json.RawMessage(`"/"`), "env": json.RawMessage(`{"FOO": "tend"}`), "FOO": json.RawMessage(`"tend"`),
	}
	tendField := func(sum string) string {
		return `{"v": 1, "pm_id": 7, "index": 0, "sum": "` + sum + `", "spec": {"name": "api", "script": "/bin/sleep", "cwd": "/", "env": {"FOO": "tend"}, "instances": 1, "exec_mode": "fork_mode"}}`
	}
	entry := func(env string) []byte {
		return []byte(`[{"name": "api", "pm_exec_path": "/bin/sleep", "pm_cwd": "/", "env": ` + env + `, "FOO": "tend", "_tend": ` + tendField(DumpSum(fields)) + `}]`)
	}
	apps, err := ParseDump(entry(`{"FOO":   "tend"}`), "d")
	if err != nil || !apps[0].Resolved || apps[0].Instances[0].ID != 7 {
		t.Fatalf("tend's own entry: %+v %v", apps, err)
	}
	apps, err = ParseDump(entry(`{"FOO": "changed-in-pm2"}`), "d")
	if err != nil || apps[0].Resolved || apps[0].Spec.Env["FOO"] != "changed-in-pm2" || apps[0].Instances[0].ID != -1 {
		t.Fatalf("an entry PM2 saved again: %+v %v", apps, err)
	}
}

// An app moved from PM2 leaves PM2's logs folder (beside the dump) for tend's; a log path the
// user chose stays.
func TestPM2DumpLogPaths(t *testing.T) {
	dir := t.TempDir()
	data := []byte(`[{"name": "web", "pm_exec_path": "/bin/sleep", "pm_cwd": "/", "pm_out_log_path": "` + dir + `/logs/web-out.log",
		"pm_err_log_path": "/var/log/web/err.log", "env": {}}]`)
	apps, err := ParseDump(data, filepath.Join(dir, "dump.pm2"))
	if err != nil {
		t.Fatal(err)
	}
	if s := apps[0].Spec; s.OutFile != "" || s.ErrFile != "/var/log/web/err.log" {
		t.Fatalf("out %q, err %q", s.OutFile, s.ErrFile)
	}
}
