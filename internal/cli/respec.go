package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// settingKeys are start's flags that restart, reload and `start <app>` apply to an app that
// exists (PM2's attribute update: `pm2 restart api --node-args=--harmony`, `pm2 restart 0
// --name web`), with the config key each one sets. A "no-" flag sets its key to false.
var settingKeys = map[string]string{
	"name": "name", "namespace": "namespace", "interpreter": "interpreter",
	"node-args": "node_args", "interpreter-args": "node_args", "cwd": "cwd",
	"source-map-support": "source_map_support", "disable-source-map-support": "disable_source_map_support",
	"restart-delay": "restart_delay", "exp-backoff-restart-delay": "exp_backoff_restart_delay",
	"min-uptime": "min_uptime", "kill-timeout": "kill_timeout", "listen-timeout": "listen_timeout",
	"drain-timeout": "drain_timeout", "no-autorestart": "autorestart", "wait-ready": "wait_ready",
	"no-treekill": "treekill", "shutdown-with-message": "shutdown_with_message", "kill-signal": "kill_signal",
	"max-restarts": "max_restarts", "instance-var": "instance_var",
	"output": "out_file", "error": "error_file", "log": "log_file", "log-date-format": "log_date_format",
	"merge-logs": "merge_logs", "time": "time",
	"watch": "watch", "ignore-watch": "ignore_watch", "max-memory-restart": "max_memory_restart",
	"cron-restart": "cron_restart", "cron": "cron_restart", "uid": "uid", "user": "uid", "gid": "gid", "pid": "pid_file",
	"log-type": "log_type",
}

// addSettingFlags gives cmd start's flags for the settings of an app that exists, as start
// defines them (the same names, shorthands and help).
func addSettingFlags(f *Factory, cmd *cobra.Command) {
	NewCmdStart(f, nil).Flags().VisitAll(func(fl *pflag.Flag) {
		if _, ok := settingKeys[fl.Name]; ok && cmd.Flags().Lookup(fl.Name) == nil {
			cmd.Flags().AddFlag(fl)
		}
	})
}

// settingsGiven turns the setting flags given on cmd's command line into config keys with the
// values a config would give them; nil when none was given.
func settingsGiven(cmd *cobra.Command, cwd string) map[string]any {
	var m map[string]any
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		key, ok := settingKeys[fl.Name]
		if !ok {
			return
		}
		if m == nil {
			m = map[string]any{}
		}
		v := fl.Value.String()
		switch {
		case fl.Value.Type() == "bool":
			m[key] = (v == "true") != strings.HasPrefix(fl.Name, "no-")
		case key == "watch" && (v == "true" || v == "false"):
			m[key] = v == "true"
		case key == "watch" || key == "ignore_watch":
			m[key] = strings.ReplaceAll(v, ",", " ")
		case (key == "cwd" || key == "pid_file") && v != "null":
			m[key] = abs(cwd, v) // relative to where it is typed, as start takes it
		default:
			m[key] = v
		}
	})
	return m
}
