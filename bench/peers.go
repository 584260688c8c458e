package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/logs"
)

// App is one managed process of a workload, described the same way for every manager.
type App struct {
	Name   string
	Script string   // absolute path
	Args   []string // arguments of the script
	Node   bool     // run with node (else exec the script)
	Time   bool     // timestamp each log line
	Env    map[string]string
	Rotate int64 // rotate the log every this many bytes, keeping every file (0: never)
	// Restart: restart it whenever it exits, with the manager's own defaults otherwise.
	Restart bool
	// MaxMemory is max_memory_restart ("" for none).
	MaxMemory string
}

// Peer is a process manager under test. Every workload drives peers only through this, so that
// each is timed the same way.
type Peer interface {
	Name() string
	Setup() error        // install if needed, start the daemon
	Pids() []int         // the manager's own processes, whose CPU and memory count
	Start([]App) error   // start every app from one config file
	Online() (int, bool) // apps online; false if the manager did not answer
	StopAll() error
	DeleteAll() error
	List() []string // the CLI command of the list round trip
	Env() []string
	LogPath(app string) string
	// LogFiles are the app's stdout log with the files rotation moved aside, oldest first.
	LogFiles(app string) []string
	Close()
	Can(feature string) bool // "time": per-line timestamps; "rotate": rotation built in; "memlimit": max_memory_restart
}

func run(env []string, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %.300s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

func pidFromFile(path string) []int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	return []int{pid}
}

// --- the PM2-style CLIs: tend and PM2 itself ---

// cliPeer drives a manager through PM2's verbs and ecosystem files, which tend speaks too.
type cliPeer struct {
	name, bin, home string
	homeVar         string   // TEND_HOME or PM2_HOME
	pidFile         string   // the daemon's pid file, in home
	quiet           []string // what keeps the CLI from printing its table
}

func (p *cliPeer) Name() string { return p.name }
func (p *cliPeer) Env() []string {
	return append(os.Environ(), p.homeVar+"="+p.home)
}
func (p *cliPeer) Pids() []int    { return pidFromFile(filepath.Join(p.home, p.pidFile)) }
func (p *cliPeer) List() []string { return []string{p.bin, "jlist"} }
func (p *cliPeer) LogPath(app string) string {
	return filepath.Join(p.home, "logs", app+"-out.log")
}
func (p *cliPeer) LogFiles(app string) []string {
	return append(logs.Rotated(p.LogPath(app)), p.LogPath(app)) // tend's names; PM2 has none
}
func (p *cliPeer) Can(f string) bool   { return f != "rotate" || p.name == "tend" } // PM2 has memlimit too
func (p *cliPeer) Online() (int, bool) { return jlistOnline(p.Env(), p.bin) }
func (p *cliPeer) Close()              { run(p.Env(), p.bin, "kill") }

func (p *cliPeer) verb(args ...string) error {
	_, err := run(p.Env(), append(append([]string{p.bin}, args...), p.quiet...)...)
	return err
}

func (p *cliPeer) Start(apps []App) error { return p.StartWith(os.Environ(), apps) }

// StartWith starts apps from an ecosystem file, the CLI running with env (and the peer's home).
func (p *cliPeer) StartWith(env []string, apps []App) error {
	cfg := filepath.Join(p.home, "bench-apps.json")
	if err := writeEcosystem(cfg, apps); err != nil {
		return err
	}
	_, err := run(append(env, p.homeVar+"="+p.home), append([]string{p.bin, "start", cfg}, p.quiet...)...)
	return err
}

func (p *cliPeer) StopAll() error   { return p.verb("stop", "all") }
func (p *cliPeer) DeleteAll() error { return p.verb("delete", "all") }

// tendPeer is tend through its PM2-style CLI.
type tendPeer struct{ cliPeer }

func newTend(work, bin string) *tendPeer {
	return &tendPeer{cliPeer{name: "tend", bin: bin, home: filepath.Join(work, "tend"),
		homeVar: "TEND_HOME", pidFile: "daemon.pid", quiet: []string{"-s"}}}
}

func (p *tendPeer) Setup() error { _, err := run(p.Env(), p.bin, "ping"); return err }

// writeEcosystem writes apps as PM2's {apps: [...]}, which tend reads too.
func writeEcosystem(path string, apps []App) error {
	var list []map[string]any
	for _, a := range apps {
		m := map[string]any{"name": a.Name, "script": a.Script, "args": a.Args, "autorestart": a.Restart, "env": a.Env}
		if !a.Node {
			m["interpreter"] = "none"
		}
		if a.Time {
			m["time"] = true
		}
		if a.MaxMemory != "" {
			m["max_memory_restart"] = a.MaxMemory
		}
		// tend rotates at 10 MB by default: the rows without rotation turn it off.
		m["max_size"], m["retain"] = a.Rotate, "all"
		list = append(list, m)
	}
	return writeJSON(path, map[string]any{"apps": list})
}

// jlistOnline counts the online instances in a PM2-shaped jlist printed by bin.
func jlistOnline(env []string, bin string) (int, bool) {
	cmd := exec.Command(bin, "jlist")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return 0, false
	}
	return countJlist(out)
}

// countJlist counts the online elements of a PM2-shaped jlist.
func countJlist(out []byte) (int, bool) {
	var list []struct {
		Env struct {
			Status string `json:"status"`
		} `json:"pm2_env"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return 0, false
	}
	n := 0
	for _, e := range list {
		if e.Env.Status == "online" {
			n++
		}
	}
	return n, true
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// --- PM2 ---

type pm2Peer struct {
	cliPeer
	cache string
}

// PM2Version is the PM2 the figures compare against.
const PM2Version = "7.0.4"

func newPM2(work, cache string) *pm2Peer {
	return &pm2Peer{cliPeer: cliPeer{name: "PM2 " + PM2Version, bin: filepath.Join(cache, "node_modules", ".bin", "pm2"),
		home: filepath.Join(work, "pm2"), homeVar: "PM2_HOME", pidFile: "pm2.pid"}, cache: cache}
}

// Setup installs PM2 from npm into the harness's cache folder (never globally).
func (p *pm2Peer) Setup() error {
	if _, err := os.Stat(p.bin); err != nil {
		if err := os.MkdirAll(p.cache, 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(p.cache, "package.json")); err != nil {
			os.WriteFile(filepath.Join(p.cache, "package.json"), []byte(`{"private": true}`), 0o644)
		}
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "pm2@"+PM2Version)
		cmd.Dir = p.cache
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("npm install pm2@%s: %v: %.300s", PM2Version, err, out)
		}
	}
	_, err := run(p.Env(), p.bin, "ping")
	return err
}

// --- supervisord ---

type supervisorPeer struct {
	dir string
}

func newSupervisor(work string) *supervisorPeer {
	return &supervisorPeer{dir: filepath.Join(work, "supervisor")}
}

func (p *supervisorPeer) Name() string   { return "supervisord" }
func (p *supervisorPeer) Env() []string  { return os.Environ() }
func (p *supervisorPeer) conf() string   { return filepath.Join(p.dir, "supervisord.conf") }
func (p *supervisorPeer) List() []string { return []string{"supervisorctl", "-c", p.conf(), "status"} }
func (p *supervisorPeer) Pids() []int    { return pidFromFile(filepath.Join(p.dir, "supervisord.pid")) }
func (p *supervisorPeer) LogPath(app string) string {
	return filepath.Join(p.dir, "logs", app+"-out.log")
}

// LogFiles: supervisord rotates to .1, .2…, the highest the oldest.
func (p *supervisorPeer) LogFiles(app string) []string {
	path := p.LogPath(app)
	var older []string
	for i := 1; ; i++ {
		if _, err := os.Stat(fmt.Sprintf("%s.%d", path, i)); err != nil {
			break
		}
		older = append([]string{fmt.Sprintf("%s.%d", path, i)}, older...)
	}
	return append(older, path)
}

// supervisord has no per-line timestamps.
func (p *supervisorPeer) Can(feature string) bool { return feature != "time" && feature != "memlimit" }

const supervisorConf = `[unix_http_server]
file=%(here)s/supervisor.sock
[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s/logs
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock
[include]
files = %(here)s/programs.conf
`

// Setup installs Debian's supervisor package if needed and starts supervisord on its own config.
func (p *supervisorPeer) Setup() error {
	if err := aptInstall("supervisord", "supervisor"); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(p.dir, "logs"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p.conf(), []byte(supervisorConf), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.dir, "programs.conf"), nil, 0o644); err != nil {
		return err
	}
	if _, err := run(nil, "supervisord", "-c", p.conf()); err != nil {
		return err
	}
	if !waitUntil(10*time.Second, 50*time.Millisecond, func() bool { _, ok := p.Online(); return ok }) {
		return errors.New("supervisord did not answer")
	}
	return nil
}

func (p *supervisorPeer) Start(apps []App) error {
	var b strings.Builder
	for _, a := range apps {
		argv := []string{a.Script}
		if a.Node {
			node, _ := exec.LookPath("node")
			argv = []string{node, a.Script}
		}
		argv = append(argv, a.Args...)
		// startsecs=0: RUNNING as soon as it is spawned, as tend and PM2 call it online;
		// maxbytes=0: no rotation, unless the row rotates (every file kept, as for tend).
		fmt.Fprintf(&b, "[program:%s]\ncommand=%s\nautostart=true\nautorestart=%v\nstartsecs=0\n"+
			"stdout_logfile=%s\nstdout_logfile_maxbytes=%d\nstdout_logfile_backups=10000\nstderr_logfile=%s\nstderr_logfile_maxbytes=0\n\n",
			a.Name, strings.Join(argv, " "), a.Restart, p.LogPath(a.Name), a.Rotate, filepath.Join(p.dir, "logs", a.Name+"-err.log"))
		if len(a.Env) > 0 {
			var kv []string
			for k, v := range a.Env {
				kv = append(kv, fmt.Sprintf("%s=%q", k, v))
			}
			fmt.Fprintf(&b, "environment=%s\n\n", strings.Join(kv, ","))
		}
	}
	if err := os.WriteFile(filepath.Join(p.dir, "programs.conf"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	_, err := run(nil, "supervisorctl", "-c", p.conf(), "update")
	return err
}

func (p *supervisorPeer) Online() (int, bool) {
	// status exits 3 when some program is not running; the text is what counts.
	out, _ := exec.Command("supervisorctl", "-c", p.conf(), "status").Output()
	if len(out) == 0 {
		if _, err := os.Stat(filepath.Join(p.dir, "supervisor.sock")); err != nil {
			return 0, false
		}
	}
	return strings.Count(string(out), " RUNNING "), true
}

func (p *supervisorPeer) StopAll() error {
	_, err := run(nil, "supervisorctl", "-c", p.conf(), "stop", "all")
	return err
}

func (p *supervisorPeer) DeleteAll() error {
	// Removing running programs through update takes supervisord minutes for 200; stopping them
	// first takes about a second, and the removal of stopped ones is quick.
	if err := p.StopAll(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.dir, "programs.conf"), nil, 0o644); err != nil {
		return err
	}
	_, err := run(nil, "supervisorctl", "-c", p.conf(), "update")
	return err
}

func (p *supervisorPeer) Close() {
	run(nil, "supervisorctl", "-c", p.conf(), "shutdown")
	for _, pid := range p.Pids() {
		waitUntil(5*time.Second, 50*time.Millisecond, func() bool { _, err := readProcStat(pid); return err != nil })
	}
}
