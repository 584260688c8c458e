package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/internal/home"
	"golang.org/x/sys/unix"
)

// pidPath is where an instance's pid file goes, as PM2 keeps them: pid_file (-p) with -<id>
// before its extension (-p echo.pid writes echo-0.pid), else $TEND_HOME/pids/<name>-<id>.pid.
func (in *Instance) pidPath() string {
	if p := in.spec.PidFile; p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(in.spec.Cwd, p)
		}
		ext := filepath.Ext(p)
		return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(p, ext), in.id, ext)
	}
	if in.sup.home == "" {
		return ""
	}
	return filepath.Join(in.sup.home, "pids", fmt.Sprintf("%s-%d.pid", in.spec.Name, in.id))
}

// writePidFile writes a run's pid file (the pid alone, no newline: PM2's form). A failure is
// said in tend.log and changes nothing else: the pid file is for scripts, not for tend.
func (in *Instance) writePidFile(r *run) {
	path := in.pidPath()
	if path == "" {
		return
	}
	r.pidFile = path
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		var f *os.File
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			_, err = f.WriteString(strconv.Itoa(r.pid))
			err = errors.Join(err, f.Close())
		}
	}
	if err != nil {
		in.log.Warn("cannot write the pid file", "path", path, "err", err)
	}
}

// removePidFile removes a run's pid file when it still holds that run's pid: during a reload
// the replacement has written its own there already.
func removePidFile(r *run) {
	if r.pidFile != "" {
		home.RemovePid(r.pidFile, r.pid)
	}
}
