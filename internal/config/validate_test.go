package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every app's problem at once, each on the line where the app begins.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apps.json")
	os.WriteFile(path, []byte(`{"apps": [
  {"name": "api", "script": "/bin/true", "autorestrat": true},
  {"name": "bad", "instances": 2},
  {"name": "api", "script": "/bin/true"},
  {"name": "x", "script": "/bin/true", "instances": 100000}
]}`), 0o644)
	problems, apps := Validate(path, path, nil)
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	want := []string{
		path + `:2: warning: apps[0] "api": unknown key, ignored: autorestrat (did you mean autorestart?)`,
		path + `:3: apps[1] "bad": script is missing`,
		path + `:4: apps[2] "api": the name "api" is apps[0]'s too; names must be unique`,
		path + `:5: apps[3] "x": instances 100000 is more than 4096`,
	}
	if apps != 4 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d apps:\n%s\nwant:\n%s", apps, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	os.WriteFile(path, []byte("[\n {\"script\": \"/bin/true\"},\n\n {\"name\": 3}\n]"), 0o644)
	if problems, _ := Validate(path, path, nil); len(problems) != 1 || !strings.HasPrefix(problems[0].String(), path+":4: apps[1]") {
		t.Fatalf("bare array: %v", problems)
	}
	os.WriteFile(path, []byte(`{"apps": [`), 0o644)
	if problems, _ := Validate(path, path, nil); len(problems) != 1 || !strings.Contains(problems[0].String(), path+":1:10: not valid JSON") {
		t.Fatalf("syntax: %v", problems)
	}
}
