package daemon

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/notify"
	"github.com/tend-sh/tend/internal/supervisor"
)

// sharedDir is where a root daemon keeps what the apps it runs as other users (uid) must reach:
// the Node preload and a readiness socket. The daemon's home is closed to them (0700). This
// folder is root's and 0755, under /run (else the temp folder), one per home; one that someone
// else owns or may write is refused, since an app would run what it finds there.
func sharedDir(home string) (string, error) {
	h := fnv.New64a()
	h.Write([]byte(home))
	name := fmt.Sprintf("tend-%016x", h.Sum64())
	var last error
	for _, base := range []string{"/run", os.TempDir()} {
		if st, err := os.Stat(base); err != nil || !st.IsDir() {
			continue
		}
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			last = err
			continue
		}
		if err := rootOnly(dir); err != nil {
			last = err
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("no folder for apps of other users: %v", last)
}

// rootOnly checks that dir is a folder of root's that nobody else may write.
func rootOnly(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	s, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || s.Uid != 0 || st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is not a folder of root's that only root may write; remove it", dir)
	}
	return os.Chmod(dir, 0o755)
}

// shareForOthers sets so's shared preload and readiness socket, when the daemon runs as root.
// It returns the socket to serve and close (nil when there is none) and the folder, which the
// daemon removes when it goes (the next one writes it again; an app's node has read its preload
// at its start).
func shareForOthers(home string, so *supervisor.Options, log *slog.Logger) (*net.UnixConn, string) {
	if os.Geteuid() != 0 {
		return nil, ""
	}
	dir, err := sharedDir(home)
	if err != nil {
		log.Error("apps with uid get no Node preload and no readiness socket", "err", err)
		return nil, ""
	}
	if so.SharedPreload, err = ipc.WritePreload(dir); err != nil {
		log.Error("apps with uid get no Node preload", "err", err)
	}
	path := filepath.Join(dir, "notify.sock")
	// Any user may send to it: a datagram counts only from the pid of an instance tend started
	// (the kernel's credentials name the sender).
	c, err := notify.Listen(path, 0)
	if err != nil {
		log.Error("apps with uid get no readiness socket", "err", err)
		return nil, dir
	}
	so.SharedNotify = path
	return c, dir
}
