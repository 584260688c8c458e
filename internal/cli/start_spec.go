package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/config"
)

// spec builds an app from start's flags, resolved as the daemon takes it.
func (o *StartOptions) spec() (config.AppSpec, error) {
	s := config.Defaults()
	s.Script = o.Target
	s.Args = o.Args
	s.Name = o.Name
	s.Cwd = o.AppCwd
	s.Env = envMap(o.Environ)
	s.Interpreter = o.Interpreter
	if o.InterpreterArgs != "" {
		s.InterpreterArgs = config.SplitArgs(o.InterpreterArgs)
	}
	if o.changed("instances") {
		n, note, err := config.ParseInstances(o.Instances)
		if err != nil {
			return s, usagef("-i: %v", err)
		}
		if note != "" {
			fmt.Fprintf(o.IO.ErrOut, "tend: note: -i: %s\n", note)
		}
		s.Instances = n
		s.ExecMode = "" // PM2: -i means cluster mode for Node; decided once the interpreter is known
	}
	for _, p := range o.Ports {
		l, err := config.ParseListen(p)
		if err != nil {
			return s, usagef("--port: %v", err)
		}
		s.Ports = append(s.Ports, l)
		s.ExecMode = "" // a port tend holds means cluster mode, decided with the interpreter
	}
	if o.Proxy {
		if len(s.Ports) == 0 {
			return s, usagef("--proxy relays a port: add --port <port>")
		}
		s.Proxy = true
	}
	if o.Fork {
		s.ExecMode = config.ForkMode
	}
	s.Autorestart = !o.NoAutorestart
	s.Autostart = !o.NoAutostart
	// PM2_KILL_USE_MESSAGE is PM2's switch for the same, read from the environment.
	s.ShutdownWithMessage = o.ShutdownWithMessage || s.Env["PM2_KILL_USE_MESSAGE"] == "true"
	s.SourceMaps, s.NoSourceMaps = o.SourceMaps, o.NoSourceMaps
	s.NoVizion = o.changed("no-vizion")
	var inert []string
	for _, f := range inertStartFlags {
		if o.changed(f) {
			inert = append(inert, "--"+f)
		}
	}
	if len(inert) > 0 {
		fmt.Fprintf(o.IO.ErrOut, "tend: note: %s: PM2's, no effect in tend\n", strings.Join(inert, ", "))
	}
	s.Treekill = !o.NoTreekill
	s.WaitReady = o.WaitReady
	s.MergeLogs = o.MergeLogs
	s.KillSignal = o.KillSignal
	if v := strings.TrimSpace(o.InstanceVar); v == "" || strings.ContainsAny(v, "= \x00") {
		return s, usagef("--instance-var %q must be a variable name", o.InstanceVar)
	} else {
		s.InstanceVar = v
	}
	if o.Namespace != "" {
		s.Namespace = o.Namespace
	}
	if o.MaxRestarts < 0 {
		return s, usagef("--max-restarts must not be negative, got %d", o.MaxRestarts)
	}
	s.MaxRestarts = o.MaxRestarts
	if _, err := config.ParseSignal(o.KillSignal); err != nil {
		return s, usagef("--kill-signal: %v", err)
	}
	for _, d := range []struct {
		flag string
		val  string
		dst  *time.Duration
	}{
		{"restart-delay", o.RestartDelay, &s.RestartDelay},
		{"exp-backoff-restart-delay", o.ExpBackoff, &s.ExpBackoffDelay},
		{"min-uptime", o.MinUptime, &s.MinUptime},
		{"kill-timeout", o.KillTimeout, &s.KillTimeout},
		{"listen-timeout", o.ListenTimeout, &s.ListenTimeout},
		{"drain-timeout", o.DrainTimeout, &s.DrainTimeout},
	} {
		if !o.changed(d.flag) {
			continue
		}
		v, err := config.ParseDuration(d.val)
		if err != nil {
			return s, usagef("--%s: %v", d.flag, err)
		}
		*d.dst = v
	}
	s.OutFile, s.ErrFile, s.LogFile = o.Out, o.Err, o.Log
	s.StopExitCodes = o.StopExitCodes
	s.LogDateFormat = o.LogDateFormat
	if o.Time && s.LogDateFormat == "" {
		s.LogDateFormat = "YYYY-MM-DDTHH:mm:ss"
	}
	given, flagOf := map[string]any{}, map[string]string{}
	for flag, key := range keyFlags {
		if v, ok := o.Given[flag]; ok {
			flagOf[key] = flag
			switch {
			case flag == "watch" && (v == "true" || v == "false"):
				given[key] = v == "true"
			case flag == "watch" || flag == "ignore-watch":
				given[key] = strings.ReplaceAll(v, ",", " ")
			default:
				given[key] = v
			}
		}
	}
	if err := config.ApplyKeys(&s, given); err != nil {
		var ke *config.KeyError
		if errors.As(err, &ke) {
			return s, usagef("--%s%s", flagOf[ke.Key], strings.TrimPrefix(ke.Msg, ke.Key))
		}
		return s, err
	}
	if s.PidFile != "" {
		s.PidFile = abs(o.Cwd, s.PidFile) // PM2: -p is relative to where it is typed
	}
	if err := config.Resolve(&s, o.Cwd); err != nil {
		return s, err
	}
	if o.AppendEnvToName && o.EnvName != "" {
		s.Name += "-" + o.EnvName // PM2's --append-env-to-name, on the name Resolve gave
	}
	return s, nil
}

// keyFlags are start's flags for the keys ApplyKeys reads, and those keys.
var keyFlags = map[string]string{"watch": "watch", "ignore-watch": "ignore_watch", "max-memory-restart": "max_memory_restart",
	"cron-restart": "cron_restart", "cron": "cron_restart", "uid": "uid", "user": "uid", "gid": "gid", "pid": "pid_file", "log-type": "log_type"}
