package cli

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

// StartOptions are start's flags, as PM2 names them, and what start runs with.
type StartOptions struct {
	IO       *IOStreams
	Client   func() (client.API, error)
	Cwd      string
	Environ  []string
	NoDaemon bool
	Silent   bool
	// Foreground runs a daemon in this process that starts req and returns when it stops
	// (--no-daemon).
	Foreground func(req api.StartRequest) error

	Target      string
	More        []string // further targets: PM2 starts each (tend start a.js b.js)
	Force       bool     // -f: another copy of a script that runs
	NoAutostart bool
	// ShutdownWithMessage: --shutdown-with-message, or PM2_KILL_USE_MESSAGE=true in the environment
	ShutdownWithMessage bool
	SourceMaps          bool
	NoSourceMaps        bool
	AppendEnvToName     bool
	Args                []string
	Name                string
	Instances           string
	Interpreter         string
	InterpreterArgs     string
	AppCwd              string // --cwd: the app's working directory
	NoAutorestart       bool
	RestartDelay        string
	ExpBackoff          string
	MaxRestarts         int
	MinUptime           string
	KillSignal          string
	KillTimeout         string
	WaitReady           bool
	ListenTimeout       string
	NoTreekill          bool
	Out, Err, Log       string
	MergeLogs           bool
	Time                bool
	LogDateFormat       string
	StopExitCodes       []int
	Fork                bool
	Namespace           string
	EnvName             string
	Only                string
	Ports               []string
	DrainTimeout        string
	InstanceVar         string
	Proxy               bool
	// Parsed and checked, acted on by a later release.
	Watch, IgnoreWatch, MaxMemory, Cron, UID, GID, PidFile, LogType string
	// Given holds the flags given on the command line (but the root's), by name, with the
	// values as pflag prints them.
	Given map[string]string
	// settings are the flags given that can change an app that exists, as config keys.
	settings map[string]any
}

// NewCmdStart builds `tend start`.
func NewCmdStart(f *Factory, runF func(*StartOptions) error) *cobra.Command {
	o := &StartOptions{IO: f.IO, Client: f.Client, Cwd: f.Cwd, Environ: f.Environ}
	o.Foreground = func(req api.StartRequest) error { return runForeground(f, req) }
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
			if w := cmd.Flags().Lookup("watch"); w.Changed && o.Watch == w.NoOptDefVal && len(before) == 2 {
				// PM2's --watch takes the word after it when that names no file (--watch src):
				// pflag gave it to the positional arguments.
				if st, err := os.Stat(abs(o.Cwd, before[1])); err != nil || st.IsDir() {
					o.Watch, before = before[1], before[:1]
				} else if st, err := os.Stat(abs(o.Cwd, before[0])); err == nil && st.IsDir() {
					o.Watch, before = before[0], before[1:]
				}
			}
			switch len(before) {
			case 0:
				o.Target = ""
			case 1:
				o.Target = before[0]
			default:
				// PM2 starts each one (tend start a.js b.js); an app's arguments go after --.
				o.Target, o.More = before[0], before[1:]
			}
			o.NoDaemon, o.Silent = boolFlag(cmd, "no-daemon"), boolFlag(cmd, "silent")
			o.settings = settingsGiven(cmd, o.Cwd)
			o.Given = map[string]string{}
			cmd.Flags().Visit(func(fl *pflag.Flag) {
				if fl.Name != "silent" && fl.Name != "no-daemon" {
					o.Given[fl.Name] = fl.Value.String()
				}
			})
			if runF != nil {
				return runF(o)
			}
			return startRun(o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Name, "name", "n", "", "app name (default: the script's file name)")
	fl.BoolVarP(&o.Force, "force", "f", false, "start another copy of a script that runs (added to its app's instances)")
	fl.StringVarP(&o.Instances, "instances", "i", "", "number of instances: N, max (one per CPU), -N (CPUs minus N)")
	fl.StringVar(&o.Interpreter, "interpreter", "", "interpreter (default from the extension; none = run directly)")
	fl.StringVar(&o.InterpreterArgs, "interpreter-args", "", "arguments for the interpreter")
	fl.StringVar(&o.InterpreterArgs, "node-args", "", "arguments for node (same as --interpreter-args)")
	fl.StringVar(&o.AppCwd, "cwd", "", "working directory of the app")
	fl.BoolVar(&o.NoAutorestart, "no-autorestart", false, "do not restart the app when it exits")
	fl.StringVar(&o.RestartDelay, "restart-delay", "", "delay before an automatic restart (ms, or 5s)")
	fl.StringVar(&o.ExpBackoff, "exp-backoff-restart-delay", "", "exponential backoff starting at this delay (ms)")
	fl.IntVar(&o.MaxRestarts, "max-restarts", config.DefaultMaxRestarts, "unstable restarts (runs shorter than --min-uptime) before the app is errored")
	fl.StringVar(&o.MinUptime, "min-uptime", "", "a run shorter than this is unstable (default 1000 ms)")
	fl.StringVar(&o.KillSignal, "kill-signal", config.DefaultKillSignal, "signal sent to stop the app")
	fl.StringVarP(&o.KillTimeout, "kill-timeout", "k", "", "time between the kill signal and SIGKILL (default 1600 ms)")
	fl.BoolVar(&o.WaitReady, "wait-ready", false, "the app is online once it calls process.send('ready')")
	fl.StringVar(&o.ListenTimeout, "listen-timeout", "", "how long --wait-ready waits (default 3000 ms)")
	fl.BoolVar(&o.NoTreekill, "no-treekill", false, "signal only the main process, not its children")
	fl.StringVarP(&o.Out, "output", "o", "", "stdout log file (/dev/null or NULL disables it)")
	fl.StringVarP(&o.Err, "error", "e", "", "stderr log file (/dev/null or NULL disables it)")
	fl.StringVarP(&o.Log, "log", "l", "", "combined stdout+stderr log file")
	fl.BoolVar(&o.MergeLogs, "merge-logs", false, "one log file for all instances of the app")
	fl.BoolVar(&o.Time, "time", false, "prefix log lines with the time")
	fl.StringVar(&o.LogDateFormat, "log-date-format", "", "prefix log lines with this date format (YYYY-MM-DD HH:mm:ss)")
	fl.IntSliceVar(&o.StopExitCodes, "stop-exit-codes", nil, "exit codes after which the app is not restarted")
	fl.BoolVarP(&o.Fork, "execute-command", "x", false, "fork mode even with -i")
	fl.StringVar(&o.Namespace, "namespace", "", "namespace (default: default)")
	fl.StringVar(&o.EnvName, "env", "", "with a config file: merge env_<name> over env")
	fl.StringVar(&o.Only, "only", "", "with a config file: only these apps (comma-separated names)")
	fl.StringArrayVar(&o.Ports, "port", nil, "a port tend holds for the app (8000 or 127.0.0.1:8000; repeatable): non-Node apps get it as fd 3 (LISTEN_FDS)")
	fl.BoolVar(&o.Proxy, "proxy", false, "with --port: relay the port to instances that bind PORT themselves (each gets a private one)")
	fl.StringVar(&o.InstanceVar, "instance-var", config.DefaultInstanceVar, "the variable that holds the instance number")
	fl.StringVar(&o.DrainTimeout, "drain-timeout", "", "during a reload, how long the old process may finish its requests (default 10s)")
	fl.StringVar(&o.Watch, "watch", "", "restart (reload in cluster mode) on changes in the app's folder, or in these comma-separated paths")
	fl.Lookup("watch").NoOptDefVal = "true"
	fl.StringVar(&o.IgnoreWatch, "ignore-watch", "", "what --watch leaves out: comma-separated names or globs (default: node_modules and dot-names)")
	fl.StringVar(&o.MaxMemory, "max-memory-restart", "", "replace the process when its tree uses more memory: 300M, 1G (a reload in cluster mode)")
	fl.StringVarP(&o.Cron, "cron-restart", "c", "", "restart on this cron schedule (5 fields, or 6 with seconds first; a reload in cluster mode)")
	fl.StringVar(&o.Cron, "cron", "", "same as --cron-restart")
	fl.StringVar(&o.UID, "uid", "", "run the app as this user (name or number; the daemon must run as root)")
	fl.StringVar(&o.UID, "user", "", "same as --uid")
	fl.StringVar(&o.GID, "gid", "", "run the app as this group (default: the user's own)")
	fl.BoolVar(&o.NoAutostart, "no-autostart", false, "add the app without starting it (tend start <name> starts it later)")
	fl.BoolVar(&o.ShutdownWithMessage, "shutdown-with-message", false, "stop the app with the IPC message \"shutdown\" instead of the kill signal")
	fl.BoolVar(&o.SourceMaps, "source-map-support", false, "map Node stack traces through source maps (--enable-source-maps; on by itself when the script has a .map)")
	fl.BoolVar(&o.NoSourceMaps, "disable-source-map-support", false, "do not map stack traces, even with a .map beside the script")
	fl.BoolVar(&o.AppendEnvToName, "append-env-to-name", false, "with --env: add -<env> to the app's name")
	for _, inert := range inertStartFlags {
		fl.Bool(inert, false, "PM2's; no effect in tend")
		fl.Lookup(inert).Hidden = true
	}
	fl.StringVarP(&o.PidFile, "pid", "p", "", "write the pid to this file, with -<id> before its extension (default: $TEND_HOME/pids/<name>-<id>.pid)")
	fl.StringVar(&o.LogType, "log-type", "", "json: each log line as a JSON object (PM2's message, timestamp, type, process_id, app_name)")
	return cmd
}

// inertStartFlags are PM2's start flags that tend takes and does nothing with: PM2.io's probes
// and tracing, git metadata (vizion).
var inertStartFlags = []string{"no-automation", "no-vizion", "no-pmx", "trace", "disable-trace", "v8",
	"event-loop-inspector", "deep-monitoring"}

func (o *StartOptions) changed(name string) bool {
	_, ok := o.Given[name]
	return ok
}

// startRun starts a script, a config file's apps, or (as PM2 does) an app that exists; with
// several targets, each in turn, and the table once at the end.
func startRun(o *StartOptions) error {
	if len(o.More) > 0 {
		if o.changed("name") {
			return usagef("--name names one app, and %d scripts were given; start them one at a time to name them", len(o.More)+1)
		}
		var errs []error
		for i, t := range append([]string{o.Target}, o.More...) {
			one := *o
			one.Target, one.More = t, nil
			one.Silent = o.Silent || i < len(o.More)
			errs = append(errs, startRun(&one))
		}
		return errors.Join(errs...)
	}
	target := o.Target
	if target == "" {
		if _, err := os.Stat(filepath.Join(o.Cwd, "ecosystem.config.js")); err == nil {
			target = "ecosystem.config.js"
		} else {
			return usagef("nothing to start: give a script, e.g. tend start app.js")
		}
	}
	if o.changed("name") && strings.TrimSpace(o.Name) == "" {
		return usagef("--name is empty; give the app a name")
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	var specs []config.AppSpec
	switch {
	case config.IsConfigFile(target) || target == "-":
		loaded, err := loadConfig(o.IO, o.Cwd, o.Environ, target, o.EnvName, o.Only)
		if err != nil {
			return err
		}
		specs = loaded
	default:
		// PM2 looks for an app of that name or id before it looks for a file.
		if !o.NoDaemon && (config.IsID(target) || target == "all" || !fileExists(abs(o.Cwd, target)) && appExists(c, target)) {
			act := &ActionOptions{IO: o.IO, Client: o.Client, Cwd: o.Cwd, Environ: o.Environ, Silent: o.Silent,
				Verb: "start", Targets: []string{target}}
			if flags := o.settingFlags(); len(flags) > 0 {
				// PM2 restarts the app with them (pm2 start 0 --name web); a stopped one starts.
				if bad := o.unsettable(); len(bad) > 0 {
					return usagef("tend start %s takes an app's settings, not %s: start the script or the config again with it (tend scale for instances)",
						target, strings.Join(bad, " "))
				}
				act.Settings, act.Verb = o.settings, "restart"
			}
			return actionRun(act)
		}
		s, err := o.spec()
		if err != nil {
			return err
		}
		done, err := o.existing(c, &s)
		if done || err != nil {
			return err
		}
		specs = append(specs, s)
	}
	req := api.StartRequest{Apps: specs}
	if o.NoDaemon {
		return o.Foreground(req)
	}
	if err := c.Start(req); err != nil {
		return err
	}
	return printTable(o.IO, c, o.Silent)
}

// settingFlags lists the app settings given on the command line, as --flag=value, by name.
func (o *StartOptions) settingFlags() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(o.Given)) {
		out = append(out, "--"+name+"="+o.Given[name])
	}
	return out
}

// unsettable lists the flags given that cannot change an app that exists.
func (o *StartOptions) unsettable() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(o.Given)) {
		if _, ok := settingKeys[name]; !ok {
			out = append(out, "--"+name)
		}
	}
	return out
}

// existing handles a script whose app name is taken, as PM2 does where tend can:
//   - another script under that name is refused: a running service is never swapped silently,
//     and tend keeps one script per name (PM2 would start a second app of that name);
//   - -f adds the new start's instances to the app (PM2's "another copy"); done is true;
//   - the same script again, with no settings, fails while the app runs ("already launched",
//     PM2's answer); a stopped or errored app is started again, and new settings restart it
//     with them.
func (o *StartOptions) existing(c client.API, s *config.AppSpec) (done bool, err error) {
	if !c.Running() {
		return false, nil
	}
	procs, err := c.Rows()
	if err != nil {
		return false, nil
	}
	have, running := 0, false
	for _, p := range procs {
		if p.Name != s.Name {
			continue
		}
		if p.Pm2Env.PmExecPath != s.Script {
			return false, usagef("an app named %q already runs %s; pass --name to start %s beside it, or delete %s first",
				s.Name, p.Pm2Env.PmExecPath, s.Script, s.Name)
		}
		have++
		running = running || p.Pm2Env.Status == "online" || p.Pm2Env.Status == "launching"
	}
	switch {
	case have == 0:
		return false, nil
	case o.Force:
		if err := c.Scale(s.Name, have+max(s.Instances, 1)); err != nil {
			return true, err
		}
		return true, printTable(o.IO, c, o.Silent)
	case running && len(o.settingFlags()) == 0:
		return true, fmt.Errorf("app %q already runs %s: tend restart %s restarts it, tend start %s -f starts another copy",
			s.Name, s.Script, s.Name, filepath.Base(s.Script))
	}
	return false, nil
}

// appExists asks the daemon, without starting one, whether an app (or a namespace) of that name
// exists.
func appExists(c client.API, name string) bool {
	if !c.Running() {
		return false
	}
	procs, err := c.Rows()
	if err != nil {
		return false
	}
	for _, p := range procs {
		// A namespace names its apps too: `tend start api` starts the stopped apps of namespace
		// api, as PM2 does.
		if p.Name == name || strconv.Itoa(p.PmID) == name || p.Pm2Env.Namespace == name {
			return true
		}
	}
	return false
}
