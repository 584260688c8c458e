package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/daemon"
)

// StartOptions are start's flags, as PM2 names them.
type StartOptions struct {
	Target          string
	Args            []string
	Name            string
	Instances       string
	Interpreter     string
	InterpreterArgs string
	Cwd             string
	NoAutorestart   bool
	RestartDelay    string
	ExpBackoff      string
	MaxRestarts     int
	MinUptime       string
	KillSignal      string
	KillTimeout     string
	WaitReady       bool
	ListenTimeout   string
	NoTreekill      bool
	Out, Err, Log   string
	MergeLogs       bool
	Time            bool
	LogDateFormat   string
	StopExitCodes   []int
	Fork            bool
	Namespace       string
	EnvName         string
	Ports           []string
	DrainTimeout    string
	InstanceVar     string
	Proxy           bool
	flags           *pflag.FlagSet
}

func newStartCmd(env *Env) *cobra.Command {
	o := &StartOptions{}
	cmd := &cobra.Command{
		Use:   "start [script|config|name|id] [flags] [-- app args]",
		Short: "Start an app, an ecosystem file's apps, or a stopped app",
		Example: `  tend start app.js --name api
  tend start app.js -i max
  tend start "npm run start" --name web
  tend start npm -- start
  tend start ecosystem.config.js
  tend start api`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			before := args
			if dash >= 0 {
				before, o.Args = args[:dash], args[dash:]
			}
			switch len(before) {
			case 0:
				o.Target = ""
			case 1:
				o.Target = before[0]
			default:
				return usagef("start takes one script, config or name; put the app's arguments after --: tend start %s -- %s", before[0], strings.Join(before[1:], " "))
			}
			o.flags = cmd.Flags()
			return runStart(env, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Name, "name", "n", "", "app name (default: the script's file name)")
	f.StringVarP(&o.Instances, "instances", "i", "", "number of instances: N, max (one per CPU), -N (CPUs minus N)")
	f.StringVar(&o.Interpreter, "interpreter", "", "interpreter (default from the extension; none = run directly)")
	f.StringVar(&o.InterpreterArgs, "interpreter-args", "", "arguments for the interpreter")
	f.StringVar(&o.InterpreterArgs, "node-args", "", "arguments for node (same as --interpreter-args)")
	f.StringVar(&o.Cwd, "cwd", "", "working directory of the app")
	f.BoolVar(&o.NoAutorestart, "no-autorestart", false, "do not restart the app when it exits")
	f.StringVar(&o.RestartDelay, "restart-delay", "", "delay before an automatic restart (ms, or 5s)")
	f.StringVar(&o.ExpBackoff, "exp-backoff-restart-delay", "", "exponential backoff starting at this delay (ms)")
	f.IntVar(&o.MaxRestarts, "max-restarts", config.DefaultMaxRestarts, "unstable restarts (runs shorter than --min-uptime) before the app is errored")
	f.StringVar(&o.MinUptime, "min-uptime", "", "a run shorter than this is unstable (default 1000 ms)")
	f.StringVar(&o.KillSignal, "kill-signal", config.DefaultKillSignal, "signal sent to stop the app")
	f.StringVarP(&o.KillTimeout, "kill-timeout", "k", "", "time between the kill signal and SIGKILL (default 1600 ms)")
	f.BoolVar(&o.WaitReady, "wait-ready", false, "the app is online once it calls process.send('ready')")
	f.StringVar(&o.ListenTimeout, "listen-timeout", "", "how long --wait-ready waits (default 3000 ms)")
	f.BoolVar(&o.NoTreekill, "no-treekill", false, "signal only the main process, not its children")
	f.StringVarP(&o.Out, "output", "o", "", "stdout log file (/dev/null or NULL disables it)")
	f.StringVarP(&o.Err, "error", "e", "", "stderr log file (/dev/null or NULL disables it)")
	f.StringVarP(&o.Log, "log", "l", "", "combined stdout+stderr log file")
	f.BoolVar(&o.MergeLogs, "merge-logs", false, "one log file for all instances of the app")
	f.BoolVar(&o.Time, "time", false, "prefix log lines with the time")
	f.StringVar(&o.LogDateFormat, "log-date-format", "", "prefix log lines with this date format (YYYY-MM-DD HH:mm:ss)")
	f.IntSliceVar(&o.StopExitCodes, "stop-exit-codes", nil, "exit codes after which the app is not restarted")
	f.BoolVarP(&o.Fork, "execute-command", "x", false, "fork mode even with -i")
	f.StringVar(&o.Namespace, "namespace", "", "namespace (default: default)")
	f.StringVar(&o.EnvName, "env", "", "with a config file: merge env_<name> over env")
	f.StringArrayVar(&o.Ports, "port", nil, "a port tend holds for the app (8000 or 127.0.0.1:8000; repeatable): non-Node apps get it as fd 3 (LISTEN_FDS)")
	f.BoolVar(&o.Proxy, "proxy", false, "with --port: relay the port to instances that bind PORT themselves (each gets a private one)")
	f.StringVar(&o.InstanceVar, "instance-var", config.DefaultInstanceVar, "the variable that holds the instance number")
	f.StringVar(&o.DrainTimeout, "drain-timeout", "", "during a reload, how long the old process may finish its requests (default 10s)")
	return cmd
}

func (o *StartOptions) changed(name string) bool { return o.flags != nil && o.flags.Changed(name) }

func runStart(env *Env, o *StartOptions) error {
	target := o.Target
	if target == "" {
		if _, err := os.Stat(filepath.Join(env.Cwd, "ecosystem.config.js")); err == nil {
			target = "ecosystem.config.js"
		} else {
			return usagef("nothing to start: give a script, e.g. tend start app.js")
		}
	}
	if o.changed("name") && strings.TrimSpace(o.Name) == "" {
		return usagef("--name is empty; give the app a name")
	}
	var specs []config.AppSpec
	switch {
	case config.IsConfigFile(target):
		if o.EnvName != "" {
			// env_<name> is merged by the ecosystem loader in a later issue; until then only
			// PM2's common keys are honoured and this flag says so instead of being ignored.
			return usagef("--env is not supported yet for %s; put the values in env", target)
		}
		loaded, err := loadConfig(env, target)
		if err != nil {
			return err
		}
		specs = loaded
	default:
		// PM2 looks for an app of that name or id before it looks for a file.
		if !env.NoDaemon && (config.IsID(target) || target == "all" || !fileExists(abs(env.Cwd, target)) && appExists(env, target)) {
			if flags := o.settingFlags(); len(flags) > 0 {
				return usagef("tend start %s takes no settings (got %s); to change them, start the app's script again with them: tend start <script> --name <name> %s",
					target, strings.Join(flags, " "), strings.Join(flags, " "))
			}
			return runAction(env, "start", []string{target})
		}
		s, err := o.spec(env)
		if err != nil {
			return err
		}
		if err := checkNameClash(env, &s); err != nil {
			return err
		}
		specs = append(specs, s)
	}
	req := api.StartRequest{Apps: specs}
	if env.NoDaemon {
		return runForeground(env, req)
	}
	if err := env.Client().Do("POST", api.PathStart, req, nil); err != nil {
		return err
	}
	return printTable(env)
}

// settingFlags lists the app settings given on the command line, as --flag=value.
func (o *StartOptions) settingFlags() []string {
	var out []string
	if o.flags == nil {
		return nil
	}
	o.flags.Visit(func(f *pflag.Flag) {
		if f.Name != "silent" && f.Name != "no-daemon" {
			out = append(out, "--"+f.Name+"="+f.Value.String())
		}
	})
	return out
}

// checkNameClash refuses to replace an app by another script under the same name: starting the
// same script again restarts it (with the new settings), as the docs say, but a different one
// would silently swap a running service.
func checkNameClash(env *Env, s *config.AppSpec) error {
	if !env.Client().Running() {
		return nil
	}
	procs, err := fetchList(env)
	if err != nil {
		return nil
	}
	for _, p := range procs {
		if p.Name == s.Name && p.Pm2Env.PmExecPath != s.Script {
			return usagef("an app named %q already runs %s; pass --name to start %s beside it, or delete %s first",
				s.Name, p.Pm2Env.PmExecPath, s.Script, s.Name)
		}
	}
	return nil
}

// loadConfig reads an ecosystem file's apps as the daemon takes them: resolved, with the CLI's
// environment under each app's env, and a warning naming the keys tend does not act on.
func loadConfig(env *Env, target string) ([]config.AppSpec, error) {
	loaded, err := config.LoadFile(abs(env.Cwd, target))
	if err != nil {
		return nil, err
	}
	specs := make([]config.AppSpec, 0, len(loaded))
	for _, s := range loaded {
		if len(s.IgnoredKeys) > 0 {
			fmt.Fprintf(env.IO.Err, "tend: warning: %s: app %q: ignoring keys tend does not support yet: %s\n",
				target, s.Name, strings.Join(s.IgnoredKeys, ", "))
		}
		s.Env = config.MergeEnv(envMap(env.Environ), s.Env)
		if err := config.Resolve(&s, s.Cwd); err != nil {
			return nil, fmt.Errorf("%s: %w", target, err)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// spec builds an app from the flags.
func (o *StartOptions) spec(env *Env) (config.AppSpec, error) {
	s := config.Defaults()
	s.Script = o.Target
	s.Args = o.Args
	s.Name = o.Name
	s.Cwd = o.Cwd
	s.Env = envMap(env.Environ)
	s.Interpreter = o.Interpreter
	if o.InterpreterArgs != "" {
		s.InterpreterArgs = config.SplitArgs(o.InterpreterArgs)
	}
	if o.changed("instances") {
		n, err := config.ParseInstances(o.Instances)
		if err != nil {
			return s, usagef("-i: %v", err)
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
	if err := config.Resolve(&s, env.Cwd); err != nil {
		return s, err
	}
	return s, nil
}

// runForeground is `tend --no-daemon start …`: the daemon runs in this process, its apps' lines
// on our stdout, until SIGTERM or SIGINT.
func runForeground(env *Env, req api.StartRequest) error {
	return daemon.Run(daemon.Options{
		Home: env.Home, Version: Version, Foreground: true, Stdout: env.IO.Out, Stderr: env.IO.Err,
		ExitWhenDone: true,
		Ready: func() error {
			c := env.Client()
			c.AutoStart = false
			return c.Do("POST", api.PathStart, req, nil)
		},
	})
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func abs(cwd, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cwd, p)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// appExists asks the daemon, without starting one, whether an app of that name exists.
func appExists(env *Env, name string) bool {
	c := env.Client()
	if !c.Running() {
		return false
	}
	procs, err := fetchList(env)
	if err != nil {
		return false
	}
	for _, p := range procs {
		if p.Name == name || strconv.Itoa(p.PmID) == name {
			return true
		}
	}
	return false
}
