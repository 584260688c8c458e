// Package config holds AppSpec, the one description of an app that every other package shares,
// and turns what a user gives (flags, a PM2 ecosystem file) into it.
package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tend-sh/tend/internal/errdefs"
)

// PM2's defaults, kept so that a PM2 user's expectations hold.
const (
	DefaultKillSignal    = "SIGINT"
	DefaultKillTimeout   = 1600 * time.Millisecond
	DefaultMaxRestarts   = 16
	DefaultMinUptime     = 1000 * time.Millisecond
	DefaultListenTimeout = 3000 * time.Millisecond
	DefaultInstanceVar   = "NODE_APP_INSTANCE"
	DefaultNamespace     = "default"
	DefaultDrainTimeout  = 10 * time.Second
)

// Listen is one address an app serves: a port, on every address when Host is empty.
type Listen struct {
	Host string `json:"host,omitempty"`
	Port int    `json:"port"`
}

func (l Listen) String() string {
	if l.Host == "" {
		return strconv.Itoa(l.Port)
	}
	if strings.Contains(l.Host, ":") {
		return "[" + l.Host + "]:" + strconv.Itoa(l.Port)
	}
	return l.Host + ":" + strconv.Itoa(l.Port)
}

// ParseListen reads 8000, 127.0.0.1:8000 or [::1]:8000.
func ParseListen(s string) (Listen, error) {
	t := strings.TrimSpace(s)
	host, port := "", t
	if i := strings.LastIndex(t, ":"); i >= 0 {
		host, port = strings.Trim(t[:i], "[]"), t[i+1:]
		if host == "" || net.ParseIP(host) == nil {
			return Listen{}, fmt.Errorf("port %q: the address before the port must be an IP address", s)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return Listen{}, fmt.Errorf("port %q must be a number from 1 to 65535, optionally after an IP address and a colon", s)
	}
	return Listen{Host: host, Port: n}, nil
}

// Drain is the drain timeout in effect.
func (s *AppSpec) Drain() time.Duration {
	if s.DrainTimeout > 0 {
		return s.DrainTimeout
	}
	return DefaultDrainTimeout
}

// ListenFds reports whether instances inherit their slot sockets (LISTEN_FDS): cluster mode
// with declared ports, for runtimes that do not speak Node's cluster protocol.
func (s *AppSpec) ListenFds() bool {
	return s.ExecMode == ClusterMode && len(s.Ports) > 0 && !s.IsNodeLike() && !s.Proxy
}

// NodeCluster reports whether instances speak Node's cluster protocol with the daemon.
func (s *AppSpec) NodeCluster() bool {
	return s.ExecMode == ClusterMode && s.NodeIPC && !s.Proxy
}

// ProxyMode reports whether the daemon relays the app's port to the instances' private ports.
func (s *AppSpec) ProxyMode() bool {
	return s.ExecMode == ClusterMode && s.Proxy && len(s.Ports) > 0
}

// ExecMode is PM2's exec_mode.
type ExecMode string

const (
	ForkMode    ExecMode = "fork_mode"
	ClusterMode ExecMode = "cluster_mode"
)

// AppSpec is everything the daemon needs to run one app. It is resolved: paths are absolute,
// the interpreter is chosen, durations are durations. The CLI resolves it (it knows the user's
// cwd and PATH); the daemon validates it again, since any client may send one.
type AppSpec struct {
	Name      string   `json:"name"`
	Namespace string   `json:"namespace,omitempty"`
	Script    string   `json:"script"` // absolute path, or the command line for bash -c
	Args      []string `json:"args,omitempty"`
	Cwd       string   `json:"cwd"`
	// Interpreter is an absolute path, or "" to exec Script directly.
	Interpreter     string   `json:"interpreter,omitempty"`
	InterpreterArgs []string `json:"interpreter_args,omitempty"`
	// NodeArgsDropped: the user gave node_args as null (restart --node-args=null), which PM2
	// answers by removing node_args from the process's settings; jlist then leaves it out.
	NodeArgsDropped bool `json:"node_args_dropped,omitempty"`
	// NoVizion: vizion: false or --no-vizion, PM2's switch for git metadata, which tend does not
	// read; kept so that jlist shows the setting as PM2 does.
	NoVizion bool `json:"no_vizion,omitempty"`
	// Env is the complete environment of the app (the CLI's environment at start time plus the
	// app's own keys); tend adds only its per-instance variables.
	Env map[string]string `json:"env,omitempty"`

	Instances   int      `json:"instances"`
	ExecMode    ExecMode `json:"exec_mode"`
	InstanceVar string   `json:"instance_var,omitempty"`
	// Ports are the addresses a non-Node app in cluster mode serves: each instance inherits its
	// slot's socket of each as fds 3, 4… (LISTEN_FDS). Node apps need none: they ask at listen().
	Ports []Listen `json:"ports,omitempty"`
	// Proxy relays the port through the daemon to instances that bind a private PORT themselves
	// (the fallback for apps that cannot take an inherited socket).
	Proxy bool `json:"proxy,omitempty"`
	// DrainTimeout bounds how long a replaced instance may take to finish its requests during a
	// reload before it gets kill_signal (0: DefaultDrainTimeout).
	DrainTimeout time.Duration `json:"drain_timeout,omitempty"`

	Autorestart      bool          `json:"autorestart"`
	RestartDelay     time.Duration `json:"restart_delay,omitempty"`
	ExpBackoffDelay  time.Duration `json:"exp_backoff_restart_delay,omitempty"`
	MaxRestarts      int           `json:"max_restarts"`
	MinUptime        time.Duration `json:"min_uptime"`
	StopExitCodes    []int         `json:"stop_exit_codes,omitempty"`
	KillSignal       string        `json:"kill_signal"`
	KillTimeout      time.Duration `json:"kill_timeout"`
	WaitReady        bool          `json:"wait_ready,omitempty"`
	ListenTimeout    time.Duration `json:"listen_timeout,omitempty"`
	Treekill         bool          `json:"treekill"`
	NodeIPC          bool          `json:"node_ipc,omitempty"` // give the app Node's IPC channel
	OutFile          string        `json:"out_file,omitempty"` // "" = default path; "/dev/null" disables
	ErrFile          string        `json:"error_file,omitempty"`
	LogFile          string        `json:"log_file,omitempty"` // combined, off by default
	MergeLogs        bool          `json:"merge_logs,omitempty"`
	LogDateFormat    string        `json:"log_date_format,omitempty"`
	Autostart        bool          `json:"autostart"`
	CreatedFromFile  string        `json:"config_file,omitempty"`
	ScriptIsCommand  bool          `json:"script_is_command,omitempty"` // Script runs through bash -c
	InterpreterLabel string        `json:"exec_interpreter,omitempty"`  // what jlist shows: node, python3, bash, none

	// IncrementVar names a variable that each instance gets as the app's value of it plus the
	// instance's index (PM2's increment_var: PORT 3000 gives 3000, 3001…).
	IncrementVar string `json:"increment_var,omitempty"`
	// ConfigEnv is the part of Env the app's config set (env, env_file, env_<name>): what stays
	// over the caller's environment when `--update-env` takes a new one.
	ConfigEnv map[string]string `json:"config_env,omitempty"`
	// FilterEnv says which of the caller's variables the app does not inherit (filter_env).
	FilterEnv *EnvFilter `json:"filter_env,omitempty"`
	// ShutdownWithMessage stops the app with the IPC message "shutdown" instead of kill_signal.
	ShutdownWithMessage bool `json:"shutdown_with_message,omitempty"`
	// The start limit: more than StartLimitBurst automatic starts within StartLimitInterval
	// put the app on a backoff (0: the defaults; a burst of -1: no limit). ErroredRetry is the
	// first cooldown before an errored app is tried again (0: the default; -1: never, as PM2).
	StartLimitBurst    int           `json:"start_limit_burst,omitempty"`
	StartLimitInterval time.Duration `json:"start_limit_interval,omitempty"`
	ErroredRetry       time.Duration `json:"errored_retry,omitempty"`

	// Rotate is the app's log rotation; what it leaves unset comes from the global settings.
	Rotate RotateSettings `json:"rotate,omitzero"`

	// Parsed and checked now, acted on by later releases (Pending says which are set).
	Watch            []string      `json:"watch,omitempty"` // paths; watch: true is the cwd
	IgnoreWatch      []string      `json:"ignore_watch,omitempty"`
	WatchDelay       time.Duration `json:"watch_delay,omitempty"`
	CronRestart      string        `json:"cron_restart,omitempty"`
	User             string        `json:"uid,omitempty"`
	Group            string        `json:"gid,omitempty"`
	MaxMemoryRestart int64         `json:"max_memory_restart,omitempty"` // bytes
	PidFile          string        `json:"pid_file,omitempty"`
	LogType          string        `json:"log_type,omitempty"`

	// EnvFor are an ecosystem file's env_<name> blocks, by name: `--env <name>` merges one over
	// Env when the file is loaded (they are not kept once resolved).
	EnvFor map[string]map[string]string `json:"-"`
	// IgnoredKeys are the keys of an ecosystem file's app that tend does not know; the CLI warns
	// about them rather than dropping them silently.
	IgnoredKeys []string `json:"-"`
	// InertKeys are PM2 keys the app sets that tend accepts and does not act on, and never will
	// (vizion, pmx…): said once, not an error.
	InertKeys []string `json:"-"`
	// Notes say how a value was read where PM2's reading is loose (-i many is max); the CLI
	// prints them.
	Notes []string `json:"-"`
	// EnvTyped are the env keys whose value in the config was a number or a boolean: jlist shows
	// them so (PORT: 3000), as PM2 does; the process gets them as strings, as every variable.
	EnvTyped []string `json:"env_typed,omitempty"`
	// DeployEnv is the env of each of the config's deploy targets: with --env <target>, it goes
	// under the app's env (PM2's order: deploy, env, env_<target>).
	DeployEnv map[string]map[string]string `json:"-"`
	// AppendEnvToName adds "-<env>" to the name when the config is loaded with --env.
	AppendEnvToName bool `json:"-"`
	// SourceMaps asks Node to map stack traces through source maps (source_map_support), which
	// Resolve turns into --enable-source-maps for a Node app; Resolve sets it too when the
	// script has a .map beside it (PM2's detection), unless NoSourceMaps
	// (disable_source_map_support).
	SourceMaps   bool `json:"-"`
	NoSourceMaps bool `json:"-"`
}

// EnvFilter is PM2's filter_env: All drops the caller's whole environment, Keys drops those
// variables, and Containing drops every variable whose name contains one of its strings.
type EnvFilter struct {
	All        bool     `json:"all,omitempty"`
	Keys       []string `json:"keys,omitempty"`
	Containing []string `json:"containing,omitempty"`
}

// Apply returns the caller's environment without what the filter drops.
func (f *EnvFilter) Apply(env map[string]string) map[string]string {
	if f == nil {
		return env
	}
	out := make(map[string]string, len(env))
	if f.All {
		return out
	}
next:
	for k, v := range env {
		if slices.Contains(f.Keys, k) {
			continue
		}
		for _, c := range f.Containing {
			if strings.Contains(k, c) {
				continue next
			}
		}
		out[k] = v
	}
	return out
}

// The start limit's and the errored retry's defaults.
const (
	DefaultStartLimitBurst    = 16
	DefaultStartLimitInterval = 60 * time.Second
	DefaultErroredRetry       = 5 * time.Minute
)

// StartLimit is the start limit in effect: the burst (0: none) and the interval.
func (s *AppSpec) StartLimit() (burst int, interval time.Duration) {
	burst, interval = s.StartLimitBurst, s.StartLimitInterval
	if burst == 0 {
		burst = DefaultStartLimitBurst
	}
	if interval <= 0 {
		interval = DefaultStartLimitInterval
	}
	return max(burst, 0), interval
}

// RetryErrored is the first cooldown before an errored app is tried again, or 0 for never.
func (s *AppSpec) RetryErrored() time.Duration {
	switch {
	case s.ErroredRetry < 0:
		return 0
	case s.ErroredRetry == 0:
		return DefaultErroredRetry
	}
	return s.ErroredRetry
}

// InstanceEnv is what an instance's environment has over the app's: PM2's per-process variables
// (pm_id, name, namespace, the instance_var) and the increment_var's value.
func (s *AppSpec) InstanceEnv(id, index int) map[string]string {
	iv := s.InstanceVar
	if iv == "" {
		iv = DefaultInstanceVar
	}
	env := map[string]string{"pm_id": strconv.Itoa(id), "name": s.Name, "namespace": s.Namespace, iv: strconv.Itoa(index)}
	if v := s.IncrementVar; v != "" {
		base, _ := strconv.Atoi(s.Env[v]) // checked when the config was read; 0 when unset
		env[v] = strconv.Itoa(base + index)
	}
	return env
}

// MaxInstances bounds what one request can ask the daemon to create.
const MaxInstances = 4096

// Defaults returns a spec with PM2's defaults filled in.
func Defaults() AppSpec {
	return AppSpec{
		Namespace:     DefaultNamespace,
		Instances:     1,
		ExecMode:      ForkMode,
		InstanceVar:   DefaultInstanceVar,
		Autorestart:   true,
		MaxRestarts:   DefaultMaxRestarts,
		MinUptime:     DefaultMinUptime,
		KillSignal:    DefaultKillSignal,
		KillTimeout:   DefaultKillTimeout,
		ListenTimeout: DefaultListenTimeout,
		Treekill:      true,
		Autostart:     true,
	}
}

// ErrInvalid marks an error in what the user asked for, as opposed to a failure to do it. It is
// errdefs.ErrInvalid, the kind every layer shares.
var ErrInvalid = errdefs.ErrInvalid

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}

// Validate checks what the daemon relies on. It never touches the file system: a script that
// vanished since the CLI looked is a start failure, reported as such.
func (s *AppSpec) Validate() error {
	if err := ValidName(s.Name); err != nil {
		return err
	}
	if !printable(s.Namespace) || len(s.Namespace) > 200 {
		return invalidf("app %q: namespace %q has a control character, bytes that are not UTF-8, or over 200 bytes", s.Name, s.Namespace)
	}
	if s.Script == "" {
		return invalidf("app %q has no script", s.Name)
	}
	if s.Instances < 1 || s.Instances > MaxInstances {
		return invalidf("app %q: instances must be between 1 and %d, got %d", s.Name, MaxInstances, s.Instances)
	}
	if s.ExecMode != ForkMode && s.ExecMode != ClusterMode {
		return invalidf("app %q: exec_mode must be fork or cluster, got %q", s.Name, s.ExecMode)
	}
	if s.KillTimeout < 0 || s.RestartDelay < 0 || s.ExpBackoffDelay < 0 || s.MinUptime < 0 || s.ListenTimeout < 0 {
		return invalidf("app %q: durations must not be negative", s.Name)
	}
	for _, p := range s.Ports {
		if p.Port < 1 || p.Port > 65535 {
			return invalidf("app %q: port %d must be from 1 to 65535", s.Name, p.Port)
		}
		if p.Host != "" && net.ParseIP(p.Host) == nil {
			return invalidf("app %q: listen address %q is not an IP address", s.Name, p.Host)
		}
	}
	if s.Proxy && len(s.Ports) != 1 {
		return invalidf("app %q: proxy mode relays exactly one port; give one --port (got %d)", s.Name, len(s.Ports))
	}
	if s.DrainTimeout < 0 {
		return invalidf("app %q: drain_timeout must not be negative", s.Name)
	}
	if s.MaxRestarts < 0 {
		return invalidf("app %q: max_restarts must not be negative", s.Name)
	}
	if _, err := ParseSignal(s.KillSignal); err != nil {
		return invalidf("app %q: %v", s.Name, err)
	}
	if s.LogDateFormat != "" && strings.TrimSpace(s.LogDateFormat) == "" {
		return invalidf("app %q: log_date_format is blank", s.Name)
	}
	if s.Cwd == "" || s.Cwd[0] != '/' {
		return invalidf("app %q: cwd must be an absolute path, got %q", s.Name, s.Cwd)
	}
	return nil
}

// ValidName rejects names that would break log file names or selectors.
func ValidName(name string) error {
	switch {
	case name == "":
		return invalidf("app name is empty; pass --name")
	case name == "all":
		return invalidf(`"all" is reserved and cannot be an app name; pass another --name`)
	case strings.ContainsRune(name, '/'):
		return invalidf("app name %q contains '/', which log file names cannot hold; choose another name", name)
	case !utf8.ValidString(name):
		return invalidf("app name %q is not UTF-8; choose another name", name)
	case !printable(name):
		return invalidf("app name %q contains %s, which a terminal that lists it would act on or hide; choose another name", name, unprintable(name))
	case len(name) > 200:
		return invalidf("app name is longer than 200 characters")
	}
	return nil
}

// printable reports whether s is UTF-8 without control characters (ESC, CR, TAB, NUL…), which a
// name would carry into every terminal that lists it.
func printable(s string) bool {
	return utf8.ValidString(s) && unprintable(s) == ""
}

// unprintable names the first character of s a terminal would act on or not show: a control
// character (ESC, CR, TAB…), or a format character (bidi overrides, zero-width spaces), which make
// one name look like another; "" when there is none.
func unprintable(s string) string {
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return fmt.Sprintf("the control character %U", r)
		case unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			return fmt.Sprintf("the invisible character %U", r)
		}
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// IsID reports whether a selector names an instance id rather than an app.
func IsID(s string) bool { return isDigits(s) }
