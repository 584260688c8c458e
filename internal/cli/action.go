package cli

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

// ActionOptions are stop's, restart's, reload's and delete's (and start's, for an app that
// exists): a verb applied to each target.
type ActionOptions struct {
	IO      *IOStreams
	Client  func() (client.API, error)
	Cwd     string
	Environ []string
	Silent  bool

	Verb      string
	Targets   []string // names, ids, namespaces, all, or config files
	UpdateEnv bool
	// Settings are start's setting flags given to restart or reload, as config keys: PM2's
	// attribute update (restart api --node-args=--harmony, reload 0 --name web).
	Settings map[string]any
	// ToggleWatch is restart --watch and reload --watch without paths: PM2 turns watching on
	// when it is off and off when it is on.
	ToggleWatch bool
	EnvName     string // with a config: restart and reload merge env_<name> over env; every verb names append_env_to_name apps with it
	Only        string // with a config: only these apps
}

// NewCmdStop builds `tend stop`.
func NewCmdStop(f *Factory, runF func(*ActionOptions) error) *cobra.Command {
	return newCmdAction(f, "stop", "Stop apps (they stay in the list)", nil, runF)
}

// NewCmdRestart builds `tend restart`.
func NewCmdRestart(f *Factory, runF func(*ActionOptions) error) *cobra.Command {
	// startOrRestart: PM2's deploy verb; restart of a config starts the apps that do not run.
	return newCmdAction(f, "restart", "Restart apps", []string{"startOrRestart"}, runF)
}

// NewCmdReload builds `tend reload`.
func NewCmdReload(f *Factory, runF func(*ActionOptions) error) *cobra.Command {
	// startOrReload, startOrGracefulReload: PM2's deploy verbs; reload of a config starts the
	// apps that do not run.
	return newCmdAction(f, "reload", "Replace apps' processes one instance at a time, without refusing or failing a request",
		[]string{"startOrReload", "startOrGracefulReload", "gracefulReload"}, runF)
}

// NewCmdReset builds `tend reset`: PM2's reset of the restart counters.
func NewCmdReset(f *Factory, runF func(*ActionOptions) error) *cobra.Command {
	return newCmdAction(f, "reset", "Set apps' restart counters (restart_time, unstable restarts) back to 0", nil, runF)
}

// NewCmdDelete builds `tend delete`.
func NewCmdDelete(f *Factory, runF func(*ActionOptions) error) *cobra.Command {
	return newCmdAction(f, "delete", "Stop apps and remove them from the list", []string{"del"}, runF)
}

func newCmdAction(f *Factory, verb, short string, aliases []string, runF func(*ActionOptions) error) *cobra.Command {
	opts := &ActionOptions{IO: f.IO, Client: f.Client, Cwd: f.Cwd, Environ: f.Environ, Verb: verb}
	cmd := &cobra.Command{
		Use:     verb + " <name|id|namespace|all|config>...",
		Aliases: aliases,
		Short:   short,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Targets = args
			opts.Silent = boolFlag(cmd, "silent")
			if verb == "restart" || verb == "reload" {
				opts.Settings = settingsGiven(cmd, opts.Cwd)
				if on, ok := opts.Settings["watch"].(bool); ok && on {
					delete(opts.Settings, "watch")
					opts.ToggleWatch = true
					if len(opts.Settings) == 0 {
						opts.Settings = nil
					}
				}
			}
			if opts.EnvName != "" {
				for _, t := range args {
					if !config.IsConfigFile(t) && t != "-" {
						return usagef("--env %s needs the config file that has env_%s: tend %s <config> --env %s", opts.EnvName, opts.EnvName, verb, opts.EnvName)
					}
				}
			}
			if opts.Settings != nil || opts.ToggleWatch {
				for _, t := range args {
					if config.IsConfigFile(t) || t == "-" {
						return usagef("settings flags go with an app (tend %s <name|id> --name …); a config's apps take their settings from the file", verb)
					}
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return actionRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Only, "only", "", "with a config file: only these apps (comma-separated names)")
	if verb == "restart" || verb == "reload" {
		cmd.Flags().BoolVar(&opts.UpdateEnv, "update-env", false, "give the apps this shell's environment (their config's env stays on top); a config file's env is always applied")
		cmd.Flags().StringVar(&opts.EnvName, "env", "", "with a config file: merge env_<name> over env")
		addSettingFlags(f, cmd)
	} else {
		cmd.Flags().StringVar(&opts.EnvName, "env", "", "with a config file: the --env its apps were started with (append_env_to_name)")
	}
	if verb == "stop" {
		// PM2's stop --watch: a stop ends watching anyway.
		cmd.Flags().Bool("watch", false, "PM2's: a stop ends watching anyway")
		cmd.Flags().Lookup("watch").Hidden = true
	}
	return cmd
}

// actionRun applies the verb to each target, then prints the table as PM2 does. A config file
// names its apps; restart and reload take the file's settings too, as PM2 does.
func actionRun(opts *ActionOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	verb := opts.Verb
	var errs []error
	for _, t := range opts.Targets {
		switch {
		case (config.IsConfigFile(t) || t == "-") && (verb == "restart" || verb == "reload"):
			specs, err := loadConfig(opts.IO, opts.Cwd, opts.Environ, t, opts.EnvName, opts.Only)
			if err == nil {
				err = c.Start(api.StartRequest{Apps: specs, Mode: verb})
			}
			errs = append(errs, err)
		case config.IsConfigFile(t) || t == "-":
			errs = append(errs, configAction(opts, c, t))
		default:
			names, err := expandTarget(c, opts.Cwd, t)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, n := range names {
				if opts.UpdateEnv || opts.Settings != nil || opts.ToggleWatch {
					req := api.TargetRequest{Target: n, Settings: opts.Settings, ToggleWatch: opts.ToggleWatch}
					if opts.UpdateEnv {
						req.Env = envMap(opts.Environ)
						if req.Env == nil {
							req.Env = map[string]string{} // nil would mean "keep the env"
						}
					}
					errs = append(errs, c.Change(verb, req))
				} else {
					errs = append(errs, c.Action(verb, n))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return printTable(opts.IO, c, opts.Silent)
}

// configAction stops or deletes the apps of a config file by the names start gave them. An app of
// the file that is not in the list is skipped with a note, as PM2 skips it: a deploy script that
// stops a config whose apps were never all started goes on. So is an app of that name that runs
// another script started from elsewhere (another project's "api"), which start would not replace.
func configAction(opts *ActionOptions, c client.API, file string) error {
	path := abs(opts.Cwd, file)
	lo := config.LoadOptions{EnvName: opts.EnvName, Only: splitNames(opts.Only), Display: file, Dir: opts.Cwd}
	if file == "-" {
		// A config on stdin (cat ecosystem.json | tend delete -), as start takes it.
		data, err := readConfigStdin(opts.IO)
		if err != nil {
			return err
		}
		path, lo.Stdin, file = "-", data, "(stdin)"
	}
	refs, err := config.Refs(path, lo)
	if err != nil {
		return err
	}
	procs, err := c.Rows()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range refs {
		i := slices.IndexFunc(procs, func(p api.Process) bool { return p.Name == r.Name })
		if i < 0 {
			fmt.Fprintf(opts.IO.ErrOut, "tend: note: %s: %s is not in the list; nothing to %s\n", file, r.Name, opts.Verb)
			continue
		}
		if p := procs[i].Pm2Env; r.Script != "" && !config.SameFile(p.PmExecPath, r.Script) && !config.SameFile(p.ConfigFile, path) {
			fmt.Fprintf(opts.IO.ErrOut, "tend: note: %s: the app %s runs %s, not this file's %s; left alone\n", file, r.Name, p.PmExecPath, r.Script)
			continue
		}
		errs = append(errs, c.Action(opts.Verb, r.Name))
	}
	return errors.Join(errs...)
}
