// Package state persists what the daemon must not forget: the registry of apps, so that a daemon
// that crashed can be followed by one that knows what was running, the dump of `tend save`, and
// the settings of `tend set`.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tend-sh/tend/internal/config"
)

// Registry is what is written to $TEND_HOME/registry.json.
type Registry struct {
	Version int `json:"version"`
	NextID  int `json:"next_id"`
	// WorkerID is the last NODE_UNIQUE_ID given to a Node cluster worker: a later daemon that
	// adopts workers must not give their ids again.
	WorkerID int64 `json:"worker_id,omitempty"`
	Apps     []App `json:"apps"`
}

// App is one app and its instances.
type App struct {
	Spec      config.AppSpec `json:"spec"`
	Instances []Instance     `json:"instances"`
}

// Instance is what a later daemon needs to know of one instance.
type Instance struct {
	ID        int    `json:"pm_id"`
	Index     int    `json:"index"`
	Status    string `json:"status"`
	Pid       int    `json:"pid,omitempty"`
	StartTick uint64 `json:"start_tick,omitempty"`
	Restarts  int    `json:"restart_time"`
	Unstable  int    `json:"unstable_restarts"`
	// Others are the instance's other processes during a reload: the replacement, and old ones
	// still draining. A later daemon stops them too.
	Others []Proc `json:"others,omitempty"`
}

// Proc identifies a process across a daemon crash: its pid and its start time in clock ticks.
type Proc struct {
	Pid       int    `json:"pid"`
	StartTick uint64 `json:"start_tick"`
}

const currentVersion = 1

// Save writes reg atomically (temp file, fsync, rename) with mode 0600: it holds the apps'
// environments.
func Save(path string, reg Registry) error {
	reg.Version = currentVersion
	data, err := json.Marshal(reg)
	if err != nil {
		return err
	}
	return writeAtomic(path, data, "registry")
}

// writeAtomic writes data to path through a temporary file (mode 0600, fsynced, renamed), so
// that a reader never sees half of it.
func writeAtomic(path string, data []byte, what string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+what+"-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", what, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", what, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", what, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Load reads a registry; a missing file is (nil, nil).
func Load(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var reg Registry
	if err := json.Unmarshal(data, &reg); err != nil {
		return nil, fmt.Errorf("registry %s is corrupt: %w", path, err)
	}
	return &reg, nil
}
