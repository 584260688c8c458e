package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Proc is one instance as jlist shows it: the fields the tests read.
type Proc struct {
	Pid   int    `json:"pid"`
	Name  string `json:"name"`
	PmID  int    `json:"pm_id"`
	Monit struct {
		Memory int64
		CPU    float64
	} `json:"monit"`
	Pm2Env struct {
		Status           string         `json:"status"`
		RestartTime      int            `json:"restart_time"`
		UnstableRestarts int            `json:"unstable_restarts"`
		PmUptime         int64          `json:"pm_uptime"`
		CreatedAt        int64          `json:"created_at"`
		ExecMode         string         `json:"exec_mode"`
		Instances        int            `json:"instances"`
		PmOutLogPath     string         `json:"pm_out_log_path"`
		PmErrLogPath     string         `json:"pm_err_log_path"`
		PmExecPath       string         `json:"pm_exec_path"`
		PmCwd            string         `json:"pm_cwd"`
		Namespace        string         `json:"namespace"`
		NodeAppInstance  *int           `json:"NODE_APP_INSTANCE"`
		ExecInterpreter  string         `json:"exec_interpreter"`
		ExitCode         *int           `json:"exit_code"`
		Env              map[string]any `json:"env"`
		RetryAt          int64          `json:"_tend_retry_at"`
		LogDropped       *struct {
			Out, Err int64
			Reason   string
		} `json:"_tend_log_dropped"`
	} `json:"pm2_env"`
}

func (h *Harness) Jlist() []Proc {
	h.T.Helper()
	out := h.OK("jlist")
	var ps []Proc
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		h.T.Fatalf("jlist is not JSON: %v\n%s", err, out)
	}
	return ps
}

// Pm2Env is the pm2_env of the process with that id, every key of it.
func (h *Harness) Pm2Env(id int) map[string]any {
	h.T.Helper()
	var procs []struct {
		PmID   int            `json:"pm_id"`
		Pm2Env map[string]any `json:"pm2_env"`
	}
	if err := json.Unmarshal([]byte(h.OK("jlist")), &procs); err != nil {
		h.T.Fatalf("jlist is not JSON: %v", err)
	}
	for _, p := range procs {
		if p.PmID == id {
			return p.Pm2Env
		}
	}
	h.T.Fatalf("no process with id %d in jlist", id)
	return nil
}

func (h *Harness) Get(name string) (Proc, bool) {
	h.T.Helper()
	for _, p := range h.Jlist() {
		if p.Name == name {
			return p, true
		}
	}
	return Proc{}, false
}

// WaitFor polls jlist until cond holds for the named app's first instance.
func (h *Harness) WaitFor(name string, timeout time.Duration, what string, cond func(Proc) bool) Proc {
	h.T.Helper()
	deadline := time.Now().Add(timeout)
	var last Proc
	for time.Now().Before(deadline) {
		p, ok := h.Get(name)
		if ok && cond(p) {
			return p
		}
		last = p
		time.Sleep(50 * time.Millisecond)
	}
	h.T.Fatalf("app %q: %s not reached within %s; last: status=%q pid=%d restarts=%d", name, what, timeout, last.Pm2Env.Status, last.Pid, last.Pm2Env.RestartTime)
	return last
}

func (h *Harness) WaitStatus(name, status string) Proc {
	h.T.Helper()
	return h.WaitFor(name, 10*time.Second, "status "+status, func(p Proc) bool { return p.Pm2Env.Status == status })
}

// RegInstance is an instance as $TEND_HOME/registry.json records it.
type RegInstance struct {
	ID     int    `json:"pm_id"`
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

// Registry reads what the daemon last wrote to registry.json: each app's instances, by name.
// The daemon writes it in batches, a moment after a change: tests wait for the content they
// need rather than for a fixed time.
func (h *Harness) Registry() map[string][]RegInstance {
	data, err := os.ReadFile(filepath.Join(h.Home, "registry.json"))
	if err != nil {
		return nil
	}
	var reg struct {
		Apps []struct {
			Spec struct {
				Name string `json:"name"`
			} `json:"spec"`
			Instances []RegInstance `json:"instances"`
		} `json:"apps"`
	}
	if json.Unmarshal(data, &reg) != nil {
		return nil
	}
	out := map[string][]RegInstance{}
	for _, a := range reg.Apps {
		out[a.Spec.Name] = append(out[a.Spec.Name], a.Instances...)
	}
	return out
}

// WaitRegistry waits until registry.json records the named apps (one instance each) in the given
// statuses.
func (h *Harness) WaitRegistry(want map[string]string) {
	h.T.Helper()
	WaitUntil(h.T, 10*time.Second, fmt.Sprintf("registry.json recording %v", want), func() bool {
		reg := h.Registry()
		for name, status := range want {
			if is := reg[name]; len(is) != 1 || is[0].Status != status {
				return false
			}
		}
		return true
	})
}

// WaitAppReady waits until the named app's process (started with the testapp's -ready flag)
// has said it is ready: its signal handlers are installed. tend marks a fork-mode app online at
// spawn, before that, so a test that signals the app must wait for this.
func (h *Harness) WaitAppReady(name string) Proc {
	h.T.Helper()
	p := h.WaitFor(name, 10*time.Second, "a running process", func(p Proc) bool { return p.Pid > 0 })
	line := fmt.Sprintf("ready pid=%d\n", p.Pid)
	WaitFile(h.T, p.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, line) })
	return p
}
