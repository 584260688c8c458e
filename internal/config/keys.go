package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// KeyError is what is wrong with one key of an app in a config file; the loader adds the line
// where the key is, when the file's format tells it.
type KeyError struct {
	Key string
	Msg string // names the key
}

func (e *KeyError) Error() string { return e.Msg }
func (e *KeyError) Unwrap() error { return ErrInvalid }

func keyErr(key, format string, a ...any) error {
	return &KeyError{Key: key, Msg: key + " " + fmt.Sprintf(format, a...)}
}

// asKeyErr makes an error about key a KeyError (its message as it is).
func asKeyErr(key string, err error) error {
	if err == nil || errors.As(err, new(*KeyError)) {
		return err
	}
	return &KeyError{Key: key, Msg: strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")}
}

// inertKeys are the keys of PM2's schema that tend accepts and does not act on: PM2.io's probes,
// git metadata, Windows, module installs; force (a start of a running app restarts it);
// kill_retry_time (tend is told of the exit, it does not poll); username (PM2 fills it in).
var inertKeys = []string{
	"automation", "deep_monitoring", "disable_trace",
	"event_loop_inspector", "execute_command", "force", "install_url", "io", "kill_retry_time",
	"name_prefix", "pmx", "post_update", "trace", "username", "v8", "vizion", "watch_options",
	"windowsHide", "write",
}

// LogFileDefault as log_file (PM2's `log_file: true`) is the combined log in the logs folder.
const LogFileDefault = "true"

// cronParser reads cron_restart: the standard five fields, or six with seconds first.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// keys reads one app object of a config; used records which keys were looked at.
type keys struct {
	m    map[string]any
	used map[string]bool
}

// get is the first of keys (a key and its aliases) the app sets to something other than null.
func (k *keys) get(names ...string) (any, string, bool) {
	for _, n := range names {
		k.used[n] = true
	}
	for _, n := range names {
		if v, ok := k.m[n]; ok && v != nil {
			return v, n, true
		}
	}
	return nil, "", false
}

func (k *keys) str(dst *string, names ...string) error {
	v, key, ok := k.get(names...)
	if !ok {
		return nil
	}
	switch t := v.(type) {
	case string:
		*dst = t
	case json.Number:
		*dst = t.String()
	default:
		return keyErr(key, "must be a string, got %s", kind(v))
	}
	return nil
}

func (k *keys) boolean(dst *bool, names ...string) error {
	v, key, ok := k.get(names...)
	if !ok {
		return nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return keyErr(key, "must be true or false, got %s", kind(v))
	}
	*dst = b
	return nil
}

func (k *keys) list(dst *[]string, names ...string) error {
	v, key, ok := k.get(names...)
	if !ok {
		return nil
	}
	l, err := stringList(key, v)
	if err != nil {
		return asKeyErr(key, err)
	}
	*dst = l
	return nil
}

// duration reads milliseconds as a number, or a string such as "10s", "1m" or "1500".
func (k *keys) duration(dst *time.Duration, names ...string) error {
	var s string
	if err := k.str(&s, names...); err != nil || s == "" {
		return err
	}
	d, err := ParseDuration(s)
	if err != nil {
		return keyErr(names[0], "%v", err)
	}
	*dst = d
	return nil
}

// kind names a JSON value's type for a message.
func kind(v any) string {
	switch t := v.(type) {
	case string:
		return strconv.Quote(t)
	case json.Number:
		return "the number " + t.String()
	case bool:
		return strconv.FormatBool(t)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%v", v)
}

func appFromMap(m map[string]any, dir string) (s AppSpec, err error) {
	s = Defaults()
	s.Cwd = dir
	k := &keys{m: m, used: map[string]bool{}}
	defer func() {
		for key := range m {
			switch {
			case k.used[key]:
			case slices.Contains(inertKeys, key):
				s.InertKeys = append(s.InertKeys, key)
			default:
				if near := nearest(key, k.used); near != "" {
					key += " (did you mean " + near + "?)"
				}
				s.IgnoredKeys = append(s.IgnoredKeys, key)
			}
		}
		slices.Sort(s.IgnoredKeys)
		slices.Sort(s.InertKeys)
	}()
	if _, _, ok := k.get("script", "exec", "cmd", "command"); !ok {
		return s, keyErr("script", "is missing")
	}
	for _, step := range []func(*keys, *AppSpec) error{basics, environment, instances, policy, logging, rotation, moreKeys} {
		if err := step(k, &s); err != nil {
			return s, err
		}
	}
	for _, key := range inertKeys {
		k.used[key] = false // known, and said to do nothing rather than suggested for a typo
	}
	return s, nil
}

// basics reads what runs: the script, its name, where, with what.
func basics(k *keys, s *AppSpec) error {
	for _, e := range []error{
		k.str(&s.Script, "script", "exec", "cmd", "command"), k.str(&s.Name, "name"), k.str(&s.Namespace, "namespace"),
		k.str(&s.Interpreter, "interpreter", "exec_interpreter"), k.list(&s.Args, "args"),
		k.list(&s.InterpreterArgs, "node_args", "interpreter_args", "interpreterArgs"),
		k.boolean(&s.SourceMaps, "source_map_support"), k.boolean(&s.NoSourceMaps, "disable_source_map_support"),
	} {
		if e != nil {
			return e
		}
	}
	vizion := true
	if err := k.boolean(&vizion, "vizion"); err != nil {
		return err
	}
	s.NoVizion = !vizion
	var cwd string
	if err := k.str(&cwd, "cwd"); err != nil {
		return err
	}
	if cwd != "" {
		if !filepath.IsAbs(cwd) {
			cwd = filepath.Join(s.Cwd, cwd)
		}
		s.Cwd = cwd
	}
	return nil
}

// typedKeys are the keys of an env object whose values are numbers or booleans.
func typedKeys(env map[string]any) []string {
	var out []string
	for k, v := range env {
		switch v.(type) {
		case json.Number, bool:
			out = append(out, k)
		}
	}
	return out
}

// environment reads env, env_file, env_<name>, filter_env and the per-instance variables.
func environment(k *keys, s *AppSpec) error {
	dir := s.Cwd // the config's folder, which env_file is relative to
	if v, _, ok := k.get("env"); ok {
		env, ok := v.(map[string]any)
		if !ok {
			return keyErr("env", "must be an object, got %s", kind(v))
		}
		var err error
		if s.Env, err = envValues("env", env); err != nil {
			return asKeyErr("env", err)
		}
		s.EnvTyped = append(s.EnvTyped, typedKeys(env)...)
	}
	if v, _, ok := k.get("env_file"); ok {
		// The file's values, under env's: env in the config says what wins.
		fileEnv, err := readEnvFiles(v, dir)
		if err != nil {
			return asKeyErr("env_file", err)
		}
		s.Env = MergeEnv(fileEnv, s.Env)
	}
	for key, v := range k.m {
		name, ok := strings.CutPrefix(key, "env_")
		if !ok || name == "" || name == "file" || v == nil {
			continue
		}
		k.used[key] = true
		env, ok := v.(map[string]any)
		if !ok {
			return keyErr(key, "must be an object, got %s", kind(v))
		}
		if s.EnvFor == nil {
			s.EnvFor = map[string]map[string]string{}
		}
		var err error
		if s.EnvFor[name], err = envValues(key, env); err != nil {
			return asKeyErr(key, err)
		}
		s.EnvTyped = append(s.EnvTyped, typedKeys(env)...)
	}
	slices.Sort(s.EnvTyped)
	s.EnvTyped = slices.Compact(s.EnvTyped)
	if v, _, ok := k.get("filter_env"); ok {
		switch t := v.(type) {
		case bool:
			if t {
				s.FilterEnv = &EnvFilter{All: true}
			}
		case string:
			s.FilterEnv = &EnvFilter{Keys: []string{t}}
		case []any:
			var l []string
			if err := k.list(&l, "filter_env"); err != nil {
				return err
			}
			s.FilterEnv = &EnvFilter{Containing: l}
		default:
			return keyErr("filter_env", "must be true, a variable name or a list of parts of names, got %s", kind(v))
		}
	}
	for _, e := range []error{
		k.str(&s.InstanceVar, "instance_var"), k.str(&s.IncrementVar, "increment_var"),
		k.boolean(&s.AppendEnvToName, "append_env_to_name"),
	} {
		if e != nil {
			return e
		}
	}
	for key, v := range map[string]string{"instance_var": s.InstanceVar, "increment_var": s.IncrementVar} {
		if v != "" && !validEnvKey(v) {
			return keyErr(key, "%q is not a variable name", v)
		}
	}
	if s.IncrementVar != "" {
		if base, ok := s.Env[s.IncrementVar]; ok {
			if _, err := strconv.Atoi(base); err != nil {
				return keyErr("increment_var", "names %s, whose value %q in env is not a whole number", s.IncrementVar, base)
			}
		}
	}
	return nil
}

// instances reads how many instances, in which mode, on which ports.
func instances(k *keys, s *AppSpec) error {
	var n string
	if err := k.str(&n, "instances"); err != nil {
		return err
	}
	if n != "" {
		var err error
		var note string
		if s.Instances, note, err = ParseInstances(n); err != nil {
			return keyErr("instances", "%v", strings.TrimPrefix(err.Error(), "instances "))
		}
		if note != "" {
			s.Notes = append(s.Notes, note)
		}
		s.ExecMode = "" // decided once the interpreter is known: PM2's -i rule
	}
	var mode string
	if err := k.str(&mode, "exec_mode"); err != nil {
		return err
	}
	switch strings.TrimSuffix(mode, "_mode") {
	case "":
	case "fork":
		s.ExecMode = ForkMode
	case "cluster":
		s.ExecMode = ClusterMode
	default:
		return keyErr("exec_mode", "must be fork or cluster, got %q", mode)
	}
	var ports []string
	if err := k.list(&ports, "port", "ports"); err != nil {
		return err
	}
	for _, p := range ports {
		l, err := ParseListen(p)
		if err != nil {
			return keyErr("port", "%v", strings.TrimPrefix(err.Error(), "port "))
		}
		s.Ports = append(s.Ports, l)
	}
	if mode == "" && len(s.Ports) > 0 {
		s.ExecMode = "" // a port tend holds means cluster mode, decided with the interpreter
	}
	return k.boolean(&s.Proxy, "proxy")
}

// policy reads when to restart and how to stop.
func policy(k *keys, s *AppSpec) error {
	for _, e := range []error{
		k.duration(&s.RestartDelay, "restart_delay"), k.duration(&s.ExpBackoffDelay, "exp_backoff_restart_delay"),
		k.duration(&s.MinUptime, "min_uptime"), k.duration(&s.KillTimeout, "kill_timeout"),
		k.duration(&s.ListenTimeout, "listen_timeout"), k.duration(&s.DrainTimeout, "drain_timeout"),
		k.boolean(&s.Autorestart, "autorestart"), k.boolean(&s.Autostart, "autostart"),
		k.boolean(&s.WaitReady, "wait_ready"), k.boolean(&s.Treekill, "treekill"),
		k.boolean(&s.ShutdownWithMessage, "shutdown_with_message"), k.str(&s.KillSignal, "kill_signal"),
	} {
		if e != nil {
			return e
		}
	}
	var n string
	if err := k.str(&n, "max_restarts"); err != nil {
		return err
	}
	if n != "" {
		var err error
		if s.MaxRestarts, err = strconv.Atoi(n); err != nil || s.MaxRestarts < 0 {
			return keyErr("max_restarts", "must be a whole number ≥ 0, got %q", n)
		}
	}
	if v, _, ok := k.get("start_limit_burst"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(fmt.Sprint(v)))
		if err != nil || n < 0 {
			return keyErr("start_limit_burst", "must be a whole number ≥ 0 (0: no start limit), got %s", kind(v))
		}
		s.StartLimitBurst = n
		if n == 0 {
			s.StartLimitBurst = -1
		}
	}
	if err := k.duration(&s.StartLimitInterval, "start_limit_interval"); err != nil {
		return err
	}
	if v, _, ok := k.get("errored_retry"); ok {
		switch t := strings.TrimSpace(fmt.Sprint(v)); t {
		case "0", "never", "false":
			s.ErroredRetry = -1
		default:
			d, err := ParseDuration(t)
			if err != nil {
				return keyErr("errored_retry", "must be a duration (5m, 30s, ms) or never, got %s", kind(v))
			}
			s.ErroredRetry = d
		}
	}
	var codes []string
	if err := k.list(&codes, "stop_exit_codes"); err != nil {
		return err
	}
	for _, c := range codes {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 || n > 255 {
			return keyErr("stop_exit_codes", "must be exit codes from 0 to 255, got %q", c)
		}
		s.StopExitCodes = append(s.StopExitCodes, n)
	}
	if _, err := ParseSignal(s.KillSignal); err != nil {
		return keyErr("kill_signal", "%v", err)
	}
	return nil
}

// logging reads where the output goes.
func logging(k *keys, s *AppSpec) error {
	for _, e := range []error{
		k.str(&s.OutFile, "out_file", "out", "output", "out_log"),
		k.str(&s.ErrFile, "error_file", "error", "err", "err_file", "err_log"),
		k.str(&s.LogDateFormat, "log_date_format"), k.boolean(&s.MergeLogs, "merge_logs", "combine_logs"),
	} {
		if e != nil {
			return e
		}
	}
	if v, key, ok := k.get("log_file", "log"); ok {
		switch t := v.(type) {
		case bool:
			if t {
				s.LogFile = LogFileDefault
			}
		case string:
			s.LogFile = t
		default:
			return keyErr(key, "must be a path or true, got %s", kind(v))
		}
	}
	var stamp, off bool
	if err := k.boolean(&stamp, "time"); err != nil {
		return err
	}
	if stamp && s.LogDateFormat == "" {
		s.LogDateFormat = "YYYY-MM-DDTHH:mm:ss"
	}
	if err := k.boolean(&off, "disable_logs"); err != nil {
		return err
	}
	if off {
		s.OutFile, s.ErrFile, s.LogFile = "/dev/null", "/dev/null", ""
	}
	return nil
}
