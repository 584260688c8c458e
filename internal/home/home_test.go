package home

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// A PM2 daemon in the folder is found by its pid file and its title; a pid file left by a dead
// PM2, or naming another process now, is not one.
func TestPM2Daemon(t *testing.T) {
	l := At(t.TempDir())
	if pid := l.PM2Daemon(); pid != 0 {
		t.Fatalf("no pm2.pid: %d", pid)
	}
	cmd := exec.Command("bash", "-c", `exec -a "PM2 v7.0.4: God Daemon (/x)" sleep 60`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	os.WriteFile(l.PM2Pid, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	// exec -a takes effect once bash has exec'd: until then the title is bash's.
	deadline := time.Now().Add(5 * time.Second)
	for l.PM2Daemon() != cmd.Process.Pid {
		if time.Now().After(deadline) {
			t.Fatalf("the PM2 daemon (pid %d) is not found", cmd.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	os.WriteFile(l.PM2Pid, []byte(strconv.Itoa(os.Getpid())), 0o644)
	if pid := l.PM2Daemon(); pid != 0 {
		t.Fatalf("a pid that is not PM2's: %d", pid)
	}
}

// A home that others may write, or that another user owns, is refused with the fix.
func TestCheckOwner(t *testing.T) {
	dir := t.TempDir()
	if err := CheckOwner(dir); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	if err := CheckOwner(dir); err == nil || !strings.Contains(err.Error(), "can be written by others (mode 0777); chmod go-w") {
		t.Errorf("a world-writable home: %v", err)
	}
	os.Chmod(dir, 0o700)
	if os.Geteuid() == 0 {
		os.Chown(dir, 65534, 65534)
		if err := CheckOwner(dir); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534, not to you") {
			t.Errorf("another user's home: %v", err)
		}
		os.Chown(dir, 0, 0)
	}
}
