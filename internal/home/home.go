// Package home is the $TEND_HOME layout: where the folder is, the name of every file and folder
// in it, their modes, and the checks that a daemon can live there. The CLI, the client and the
// daemon all take their paths from here.
package home

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Modes of what lives in $TEND_HOME.
const (
	DirMode     = 0o700 // $TEND_HOME itself: only its owner may reach the socket
	LogsDirMode = 0o755 // logs/: readable, as PM2's is
	FileMode    = 0o600 // tend.log, daemon.pid, the locks, the registry
	// SocketUmask is set while a socket is bound, so that it is made 0600 (umask would otherwise
	// decide, and a chmod after bind leaves a window).
	SocketUmask = 0o177
)

// MaxSocketPath is sun_path's size minus its terminating NUL.
const MaxSocketPath = 107

// Dir is $TEND_HOME made absolute, or ~/.tend (/tmp/.tend for a user without a home).
func Dir() string {
	if h := os.Getenv("TEND_HOME"); h != "" {
		if abs, err := filepath.Abs(h); err == nil {
			return abs
		}
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/tmp"
	}
	return filepath.Join(home, ".tend")
}

// Layout is the paths under one $TEND_HOME.
type Layout struct {
	Home       string // the folder itself
	Socket     string // tend.sock: the control API
	Pid        string // daemon.pid: the running daemon's pid
	Log        string // tend.log: the daemon's own log
	Lock       string // daemon.lock: held (flock) by the running daemon
	SpawnLock  string // spawn.lock: held by a CLI while it starts a daemon
	Registry   string // registry.json: the apps, rewritten on every change
	Logs       string // logs/: the apps' log files
	Notify     string // notify.sock: sd_notify readiness datagrams from apps
	Lib        string // lib/: files the daemon writes for apps (the Node preload)
	KeeperPid  string // keeper.pid: the keeper's pid
	KeeperLock string // keeper.lock: held (flock) by the running keeper
	Dump       string // dump.pm2: what tend save wrote (PM2's format), and dump.pm2.bak before it
	PM2Pid     string // pm2.pid: PM2's daemon's pid when TEND_HOME is PM2's home too; tend's daemon writes its own there then
	Settings   string // settings.json: what `tend set` changed
}

// At lays out the $TEND_HOME at dir.
func At(dir string) Layout {
	return Layout{
		Home:       dir,
		Socket:     filepath.Join(dir, "tend.sock"),
		Pid:        filepath.Join(dir, "daemon.pid"),
		Log:        filepath.Join(dir, "tend.log"),
		Lock:       filepath.Join(dir, "daemon.lock"),
		SpawnLock:  filepath.Join(dir, "spawn.lock"),
		Registry:   filepath.Join(dir, "registry.json"),
		Logs:       filepath.Join(dir, "logs"),
		Notify:     filepath.Join(dir, "notify.sock"),
		Lib:        filepath.Join(dir, "lib"),
		KeeperPid:  filepath.Join(dir, "keeper.pid"),
		KeeperLock: filepath.Join(dir, "keeper.lock"),
		Dump:       filepath.Join(dir, "dump.pm2"),
		PM2Pid:     filepath.Join(dir, "pm2.pid"),
		Settings:   filepath.Join(dir, "settings.json"),
	}
}

// Prepare creates the folder (DirMode) and its logs folder, and checks that a daemon can live
// there: a socket path that fits sun_path, and a folder it can write.
func (l Layout) Prepare() error {
	if len(l.Socket) > MaxSocketPath {
		return fmt.Errorf("TEND_HOME %s is too long for a unix socket path (%d > %d bytes); set a shorter TEND_HOME", l.Home, len(l.Socket), MaxSocketPath)
	}
	if err := os.MkdirAll(l.Home, DirMode); err != nil {
		return fmt.Errorf("TEND_HOME %s cannot be created: %v; set TEND_HOME to a folder you own", l.Home, PathCause(err))
	}
	if err := unix.Access(l.Home, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("TEND_HOME %s cannot be written: %v; set TEND_HOME to a folder you own", l.Home, err)
	}
	if err := CheckOwner(l.Home); err != nil {
		return err
	}
	if err := os.MkdirAll(l.Logs, LogsDirMode); err != nil {
		return fmt.Errorf("TEND_HOME %s: cannot create logs folder: %v", l.Home, PathCause(err))
	}
	return nil
}

// OpenFile opens a file of the home (a lock, a pid file, tend.log) as os.OpenFile does, never
// through a symbolic link: whoever could plant one there could make a daemon write elsewhere.
func OpenFile(path string, flag int) (*os.File, error) {
	return os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, FileMode)
}

// WritePid writes a pid file of the home, never through a symbolic link.
func WritePid(path string) error {
	f, err := OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d\n", os.Getpid())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// RemovePid removes the pid file at path when it still holds pid: another process may have
// written its own there since (a replacement, a PM2 daemon).
func RemovePid(path string, pid int) {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
		os.Remove(path)
	}
}

// CheckOwner refuses a home another user owns or may write: its owner could plant links there
// that make a daemon (root's, above all) write over files it should not, or replace tend's files.
func CheckOwner(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("TEND_HOME %s: %v", dir, err)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("TEND_HOME %s belongs to uid %d, not to you (uid %d); set TEND_HOME to a folder you own", dir, st.Uid, uid)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("TEND_HOME %s can be written by others (mode %#o); chmod go-w %s, or set TEND_HOME to a folder only you can write", dir, st.Mode&0o777, dir)
	}
	return nil
}

// PM2Daemon is the pid of a PM2 daemon that runs in this folder (TEND_HOME=~/.pm2), or 0. Every
// name tend writes differs from PM2's but two: the dump, on purpose, and the apps' log files, which
// keep PM2's names so that what reads ~/.pm2/logs keeps working. Two managers running an app of
// one name at once would write into the same files, so tend does not start beside a live PM2.
func (l Layout) PM2Daemon() int {
	b, err := os.ReadFile(l.PM2Pid)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmd, []byte("PM2")) || !bytes.Contains(cmd, []byte("God Daemon")) {
		return 0 // gone, or the pid is another process's now
	}
	return pid
}

// PathCause is the cause inside an *os.PathError (the path is in our own message already), or
// err itself.
func PathCause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
