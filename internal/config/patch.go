package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// patchable are the keys an app that exists may change on restart, reload or start (PM2's
// attribute update: `pm2 restart api --node-args=--harmony`, `pm2 start 0 --name web`). What runs
// (script, instances, mode, ports) and the environment are not among them: those come from a
// start of the script or the config, from scale, and from --update-env.
var patchable = []string{
	"name", "namespace", "interpreter", "node_args", "interpreter_args", "args", "cwd",
	"source_map_support", "disable_source_map_support",
	"restart_delay", "exp_backoff_restart_delay", "min_uptime", "kill_timeout", "listen_timeout",
	"drain_timeout", "autorestart", "wait_ready", "treekill", "shutdown_with_message", "kill_signal",
	"max_restarts", "instance_var",
	"out_file", "error_file", "log_file", "log_date_format", "merge_logs", "time",
	"watch", "ignore_watch", "max_memory_restart", "cron_restart", "uid", "gid", "pid_file", "log_type",
}

// nullable are the patchable keys that null (given as "null" on a command line) drops, as PM2
// drops an attribute given as null: the app runs as if it had never been set.
var nullable = []string{"node_args", "interpreter_args", "args"}

// Patch applies settings, given as a config's keys with the values a config gives them, to a
// resolved app, as PM2's restart, reload and start apply their flags to a process that exists.
// A key Patch does not take is an error that names it, and s is left as it was.
func (s *AppSpec) Patch(m map[string]any) error {
	next := *s
	next.InterpreterArgs, next.Args = slices.Clone(s.InterpreterArgs), slices.Clone(s.Args)
	next.Env = maps.Clone(s.Env)
	set := map[string]any{}
	for key, v := range m {
		if !slices.Contains(patchable, key) {
			return keyErr(key, "%s cannot change on a restart: start the script or the config again with it (or tend scale for instances)", key)
		}
		if v != nil && v != "null" {
			set[key] = v
			continue
		}
		if !slices.Contains(nullable, key) {
			return keyErr(key, "%s cannot be null: give it a value", key)
		}
		switch key {
		case "args":
			next.Args = nil
		default:
			// PM2 removes node_args from the process's settings: jlist no longer has it.
			next.InterpreterArgs, next.NodeArgsDropped = nil, true
		}
	}
	if _, ok := set["name"]; ok && strings.TrimSpace(fmt.Sprint(set["name"])) == "" {
		return keyErr("name", "name is empty; give the app a name")
	}
	k := &keys{m: set, used: map[string]bool{}}
	for _, step := range []func(*keys, *AppSpec) error{basics, policy, logging, moreKeys} {
		if err := step(k, &next); err != nil {
			return err
		}
	}
	if _, ok := set["node_args"]; ok {
		next.NodeArgsDropped = false
	} else if _, ok := set["interpreter_args"]; ok {
		next.NodeArgsDropped = false
	}
	if _, ok := set["interpreter"]; ok {
		if err := resolveInterpreter(&next, next.Env["PATH"]); err != nil {
			return err
		}
	}
	if err := next.Validate(); err != nil {
		return err
	}
	*s = next
	return nil
}
