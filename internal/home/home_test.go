package home

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	t.Setenv("TEND_HOME", "/srv/tend")
	if got := Dir(); got != "/srv/tend" {
		t.Errorf("Dir() = %q", got)
	}
	t.Setenv("TEND_HOME", "rel")
	if wd, _ := os.Getwd(); Dir() != filepath.Join(wd, "rel") {
		t.Errorf("relative TEND_HOME: %q", Dir())
	}
	t.Setenv("TEND_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := Dir(); got != "/home/u/.tend" {
		t.Errorf("default Dir() = %q", got)
	}
}

func TestLayout(t *testing.T) {
	l := At("/h")
	for got, want := range map[string]string{
		l.Home: "/h", l.Socket: "/h/tend.sock", l.Pid: "/h/daemon.pid", l.Log: "/h/tend.log",
		l.Lock: "/h/daemon.lock", l.SpawnLock: "/h/spawn.lock", l.Registry: "/h/registry.json",
		l.Logs: "/h/logs", l.Notify: "/h/notify.sock", l.Lib: "/h/lib",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestPrepare(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	l := At(dir)
	if err := l.Prepare(); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{dir: DirMode, l.Logs: LogsDirMode} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", path, st.Mode().Perm(), err, os.FileMode(mode))
		}
	}
	long := At("/tmp/" + strings.Repeat("x", 120))
	if err := long.Prepare(); err == nil || !strings.Contains(err.Error(), "too long for a unix socket path") {
		t.Errorf("long home: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if err := At(filepath.Join(file, "sub")).Prepare(); err == nil || !strings.Contains(err.Error(), "cannot be created: not a directory") {
		t.Errorf("home under a file: %v", err)
	}
}
