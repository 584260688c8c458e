package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/daemon"
)

func newActionCmd(env *Env, verb, short string, aliases []string) *cobra.Command {
	var updateEnv bool
	cmd := &cobra.Command{
		Use:     verb + " <name|id|namespace|all|config>...",
		Aliases: aliases,
		Short:   short,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if updateEnv {
				for _, t := range args {
					if !config.IsConfigFile(t) {
						return usagef("--update-env with an app name is not supported yet; %s the app's config file, which applies its env", verb)
					}
				}
			}
			return runAction(env, verb, args)
		},
	}
	if verb == "restart" || verb == "reload" {
		cmd.Flags().BoolVar(&updateEnv, "update-env", false, "with a config file (the only form supported), the file's env is applied anyway")
	}
	return cmd
}

// runAction applies verb to each target, then prints the table as PM2 does. A config file
// names its apps; restart and reload take the file's settings too, as PM2 does.
func runAction(env *Env, verb string, targets []string) error {
	var errs []error
	for _, t := range targets {
		if config.IsConfigFile(t) && (verb == "restart" || verb == "reload") {
			specs, err := loadConfig(env, t)
			if err == nil {
				err = env.Client().Do("POST", api.PathStart, api.StartRequest{Apps: specs, Mode: verb}, nil)
			}
			errs = append(errs, err)
			continue
		}
		if config.IsConfigFile(t) {
			loaded, err := config.LoadFile(abs(env.Cwd, t))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, s := range loaded {
				if s.Name == "" {
					continue
				}
				errs = append(errs, env.Client().Do("POST", api.PathAction+verb, api.TargetRequest{Target: s.Name}, nil))
			}
			continue
		}
		errs = append(errs, env.Client().Do("POST", api.PathAction+verb, api.TargetRequest{Target: t}, nil))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return printTable(env)
}

func newKillCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "kill",
		Short: "Stop and delete every app, then stop the daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := env.Client()
			if !c.Running() {
				fmt.Fprintln(env.IO.Out, "no tend daemon is running for "+env.Home)
				return nil
			}
			c.AutoStart = false
			var ping api.Ping
			_ = c.Do("GET", api.PathPing, nil, &ping)
			err := c.Do("POST", api.PathKill, nil, nil)
			// Return only once the daemon is gone, so the next command meets a new one.
			if ping.Pid > 0 {
				deadline := time.Now().Add(10 * time.Second)
				for unix.Kill(ping.Pid, 0) == nil && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(env.IO.Out, "daemon stopped, every app deleted")
			return nil
		},
	}
}

func newPingCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "ping",
		Short: "Check that the daemon answers (starting it if needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.Ping
			if err := env.Client().Do("GET", api.PathPing, nil, &p); err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "pong (daemon pid %d, version %s, home %s)\n", p.Pid, p.Version, p.Home)
			return nil
		},
	}
}

func newSignalCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "sendSignal <signal> <name|id|all>",
		Aliases: []string{"sendsignal", "signal"},
		Short:   "Send a signal to the main process of an app",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := config.ParseSignal(args[0]); err != nil {
				return usagef("%v", err)
			}
			if err := env.Client().Do("POST", api.PathSignal, api.TargetRequest{Target: args[1], Signal: args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "sent %s to %s\n", args[0], args[1])
			return nil
		},
	}
}

func newPidCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "pid [name|id]",
		Short: "Print the pids of an app (or of every app)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := selected(env, args)
			if err != nil {
				return err
			}
			for _, p := range sel {
				fmt.Fprintln(env.IO.Out, strconv.Itoa(p.Pid))
			}
			return nil
		},
	}
}

func newDaemonCmd(env *Env) *cobra.Command {
	var background bool
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the daemon in the foreground (for systemd and containers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := daemon.Run(daemon.Options{
				Home: env.Home, Version: Version, Foreground: !background,
				Stdout: env.IO.Out, Stderr: env.IO.Err,
			})
			if err != nil && background {
				// Our stderr is /dev/null: leave the reason where the CLI that started us looks.
				if f, ferr := os.OpenFile(daemon.PathsFor(env.Home).Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); ferr == nil {
					fmt.Fprintf(f, "time=%s level=ERROR msg=%q\n", time.Now().Format(time.RFC3339), err.Error())
					f.Close()
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&background, "background", false, "started by the CLI: no output to the terminal")
	_ = cmd.Flags().MarkHidden("background")
	return cmd
}

var _ = client.ErrUnreachable

func newScaleCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scale <name> <N|+N|-N>",
		Short: "Set the number of instances of an app (+N adds, -N removes)",
		// `scale api -1` must read -1 as a count, not as a flag, so flags are read here.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, raw []string) error {
			var args []string
			for i, a := range raw {
				switch {
				case a == "--":
					args = append(args, raw[i+1:]...)
				case a == "-s" || a == "--silent" || a == "--silent=true":
					env.Silent = true
				case a == "--silent=false":
					env.Silent = false
				case a == "--no-daemon":
					return usagef("--no-daemon works only with start: tend --no-daemon start <script>")
				case a == "-h" || a == "--help":
					return cmd.Help()
				case strings.HasPrefix(a, "-") && strings.TrimLeft(a[1:], "0123456789") != "":
					return usagef("unknown flag %s for scale (see tend scale --help)", a)
				default:
					args = append(args, a)
				}
				if a == "--" {
					break
				}
			}
			if len(args) != 2 {
				return usagef("scale takes an app name and a count, e.g. tend scale api 4 (got %d arguments)", len(args))
			}
			name, want := args[0], strings.TrimSpace(args[1])
			n, err := strconv.Atoi(want)
			if err != nil {
				return usagef("instance count %q must be a number, +N or -N", args[1])
			}
			if strings.HasPrefix(want, "+") || strings.HasPrefix(want, "-") {
				procs, err := fetchList(env)
				if err != nil {
					return err
				}
				have := 0
				for _, p := range procs {
					if p.Name == name {
						have++
					}
				}
				if have == 0 {
					return notFound{fmt.Sprintf("no app named %q (see tend ls)", name)}
				}
				n += have
			}
			if n < 1 {
				return usagef("scale %s to %d: an app keeps at least 1 instance; to stop it, use tend stop %s", name, n, name)
			}
			if err := env.Client().Do("POST", api.PathScale, api.ScaleRequest{Name: name, Count: n}, nil); err != nil {
				return err
			}
			return printTable(env)
		},
	}
	return cmd
}

func newMsgCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "msg <name|id|all> <json>",
		Short: "Send a JSON message to process.on('message') in each instance of an app",
		Long: "Send a JSON message to process.on('message') in each instance of an app.\n" +
			"Unlike send, which writes a line to the app's stdin, msg uses the IPC channel.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !json.Valid([]byte(args[1])) {
				return usagef("message %q is not JSON; quote a string as '\"hello\"'", args[1])
			}
			var res api.ActionResult
			if err := env.Client().Do("POST", api.PathMessage, api.MessageRequest{Target: args[0], Message: json.RawMessage(args[1])}, &res); err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "message sent to %d instance(s) of %s\n", len(res.IDs), args[0])
			return nil
		},
	}
}

func newSendCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "send <name|id> <line>...",
		Short: "Write a line to the stdin of an app (as PM2's send)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			line := strings.Join(args[1:], " ")
			var res api.ActionResult
			if err := env.Client().Do("POST", api.PathStdin, api.StdinRequest{Target: args[0], Line: line}, &res); err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "line written to the stdin of %d instance(s) of %s\n", len(res.IDs), args[0])
			return nil
		},
	}
}
