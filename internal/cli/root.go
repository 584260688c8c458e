// Package cli holds tend's commands. Each command is an Options struct filled by its flags, a
// NewCmdX(f, runF) that builds it from the Factory (runF lets a test see the options instead of
// running), and an xRun function that talks to the daemon through client.API; every command
// writes through its IOStreams, never to os.Stdout directly. Run maps errors to exit codes, in
// one place.
package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tend-sh/tend/internal/errdefs"
)

// Version is the CLI's and the daemon's version; release builds set it with -ldflags -X.
var Version = "0.1.0-dev"

// Exit codes: a documented contract (docs/cli.md).
const (
	ExitOK          = 0
	ExitFailure     = 1 // the action failed
	ExitUsage       = 2 // bad flag, bad value, bad config
	ExitNotFound    = 3 // no app or id matches
	ExitUnreachable = 4 // no daemon answered and none could be started
)

// usagef is a bad flag, argument or value (errdefs.ErrInvalid): exit code 2.
func usagef(format string, a ...any) error { return errdefs.Newf(errdefs.ErrInvalid, format, a...) }

// notFoundf is a selector that matched nothing (errdefs.ErrNotFound): exit code 3.
func notFoundf(format string, a ...any) error {
	return errdefs.Newf(errdefs.ErrNotFound, format, a...)
}

// Main runs the CLI with the process's arguments and returns the exit code.
func Main() int { return Run(NewFactory(), os.Args[1:]) }

// Run executes args and maps the outcome to an exit code, in one place.
func Run(f *Factory, args []string) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-v") {
		// Scripts call this often; the answer needs no command tree (cobra's version template
		// alone costs more than the rest of the call).
		fmt.Fprintln(f.IO.Out, Version) // the bare version, as PM2 prints it: scripts compare it
		return ExitOK
	}
	root := newRoot(f, args)
	root.SetArgs(args)
	err := root.Execute()
	if len(args) == 0 && err == nil {
		return ExitUsage // the help, and a failure, as PM2 fails with no command: scripts check it
	}
	if err == nil {
		return ExitOK
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status)
	}
	fmt.Fprintln(f.IO.ErrOut, "tend: "+oneLine(err.Error()))
	return exitCode(err)
}

// exitCode is the one mapping from error kinds to exit codes.
func exitCode(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrInvalid):
		return ExitUsage
	case errors.Is(err, errdefs.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, errdefs.ErrUnreachable):
		return ExitUnreachable
	}
	return ExitFailure
}

// flagError says what a flag wants instead of quoting Go's parser. pflag reports a value that
// a flag refused as an *InvalidValueError around strconv's *NumError, so no text is parsed.
func flagError(err error) string {
	var bad *pflag.InvalidValueError
	var num *strconv.NumError
	if !errors.As(err, &bad) || !errors.As(err, &num) {
		return err.Error()
	}
	want := "a whole number"
	switch num.Func {
	case "ParseBool":
		want = "true or false"
	case "ParseFloat":
		want = "a number"
	}
	fl := bad.GetFlag()
	name := "--" + fl.Name
	if fl.Shorthand != "" && fl.ShorthandDeprecated == "" {
		name = "-" + fl.Shorthand
	}
	return fmt.Sprintf("invalid value %q for %s: want %s", bad.GetValue(), name, want)
}

// oneLine makes an error one line: several failures (an errors.Join) are kept, joined by "; ".
func oneLine(s string) string {
	var parts []string
	for _, p := range strings.Split(s, "\n") {
		if p = strings.TrimSpace(strings.TrimPrefix(p, errdefs.ErrInvalid.Error()+": ")); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

// boolFlag reads a bool flag, the root's persistent ones included; false when cmd has none.
func boolFlag(cmd *cobra.Command, name string) bool {
	v, _ := cmd.Flags().GetBool(name)
	return v
}

// commandEntry is a command under every name it answers to (its aliases too).
type commandEntry struct {
	names []string
	build func(*Factory) *cobra.Command
}

// commands are tend's commands, then the answers for PM2's commands tend does not have.
var commands = append(tendCommands, pm2OnlyCommands()...)

var tendCommands = []commandEntry{
	{[]string{"start"}, func(f *Factory) *cobra.Command { return NewCmdStart(f, nil) }},
	{[]string{"stop"}, func(f *Factory) *cobra.Command { return NewCmdStop(f, nil) }},
	{[]string{"restart", "startOrRestart"}, func(f *Factory) *cobra.Command { return NewCmdRestart(f, nil) }},
	{[]string{"reload", "startOrReload", "startOrGracefulReload", "gracefulReload"}, func(f *Factory) *cobra.Command { return NewCmdReload(f, nil) }},
	{[]string{"scale"}, func(f *Factory) *cobra.Command { return NewCmdScale(f, nil) }},
	{[]string{"set"}, func(f *Factory) *cobra.Command { return NewCmdSet(f, nil) }},
	{[]string{"unset"}, func(f *Factory) *cobra.Command { return NewCmdUnset(f, nil) }},
	{[]string{"get"}, func(f *Factory) *cobra.Command { return NewCmdGet(f, nil) }},
	{[]string{"reloadLogs"}, func(f *Factory) *cobra.Command { return NewCmdReloadLogs(f, nil) }},
	{[]string{"install"}, func(f *Factory) *cobra.Command { return NewCmdInstall(f, nil) }},
	{[]string{"msg"}, func(f *Factory) *cobra.Command { return NewCmdMsg(f, nil) }},
	{[]string{"send"}, func(f *Factory) *cobra.Command { return NewCmdSend(f, nil) }},
	{[]string{"reset"}, func(f *Factory) *cobra.Command { return NewCmdReset(f, nil) }},
	{[]string{"id"}, func(f *Factory) *cobra.Command { return NewCmdID(f, nil) }},
	{[]string{"completion"}, NewCmdCompletion},
	{[]string{"init", "ecosystem"}, func(f *Factory) *cobra.Command { return NewCmdInit(f, nil) }},
	{[]string{"delete", "del"}, func(f *Factory) *cobra.Command { return NewCmdDelete(f, nil) }},
	{[]string{"ls", "list", "l", "ps", "status"}, func(f *Factory) *cobra.Command { return NewCmdList(f, nil) }},
	{[]string{"jlist"}, func(f *Factory) *cobra.Command { return NewCmdJlist(f, nil) }},
	{[]string{"prettylist"}, func(f *Factory) *cobra.Command { return NewCmdPrettylist(f, nil) }},
	{[]string{"describe", "desc", "info", "show"}, func(f *Factory) *cobra.Command { return NewCmdDescribe(f, nil) }},
	{[]string{"logs", "log"}, func(f *Factory) *cobra.Command { return NewCmdLogs(f, nil) }},
	{[]string{"flush"}, func(f *Factory) *cobra.Command { return NewCmdFlush(f, nil) }},
	{[]string{"kill"}, func(f *Factory) *cobra.Command { return NewCmdKill(f, nil) }},
	{[]string{"update", "updatePM2"}, func(f *Factory) *cobra.Command { return NewCmdUpdate(f, nil) }},
	{[]string{"env"}, func(f *Factory) *cobra.Command { return NewCmdEnv(f, nil) }},
	{[]string{"save", "dump"}, func(f *Factory) *cobra.Command { return NewCmdSave(f, nil) }},
	{[]string{"resurrect"}, func(f *Factory) *cobra.Command { return NewCmdResurrect(f, nil) }},
	{[]string{"startup"}, func(f *Factory) *cobra.Command { return NewCmdStartup(f, nil) }},
	{[]string{"config"}, func(f *Factory) *cobra.Command { return NewCmdConfig(f, nil) }},
	{[]string{"unstartup"}, func(f *Factory) *cobra.Command { return NewCmdUnstartup(f, nil) }},
	{[]string{"ping"}, func(f *Factory) *cobra.Command { return NewCmdPing(f, nil) }},
	{[]string{"sendSignal", "sendsignal", "signal"}, func(f *Factory) *cobra.Command { return NewCmdSignal(f, nil) }},
	{[]string{"pid"}, func(f *Factory) *cobra.Command { return NewCmdPid(f, nil) }},
	{[]string{"events"}, func(f *Factory) *cobra.Command { return NewCmdEvents(f, nil) }},
	{[]string{"metrics"}, func(f *Factory) *cobra.Command { return NewCmdMetrics(f, nil) }},
	{[]string{"export"}, func(f *Factory) *cobra.Command { return NewCmdExport(f, nil) }},
	{[]string{"monit", "dashboard", "dash"}, func(f *Factory) *cobra.Command { return NewCmdMonit(f, nil) }},
	{[]string{"web"}, func(f *Factory) *cobra.Command { return NewCmdWeb(f, nil) }},
	{[]string{"daemon"}, func(f *Factory) *cobra.Command { return NewCmdDaemon(f, nil) }},
}

// newRoot builds the tree for args: when args name a command, that command alone (a CLI call
// runs one command, and building the others is a measurable share of `tend jlist`); the whole
// tree for help, a leading flag or an unknown name.
func newRoot(f *Factory, args []string) *cobra.Command {
	if len(args) > 0 {
		for _, c := range commands {
			if slices.Contains(c.names, args[0]) {
				return newCmdRoot(f, args[0])
			}
		}
	}
	return NewCmdRoot(f)
}

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *Factory) *cobra.Command { return newCmdRoot(f, "") }

// newCmdRoot builds the root with every command, or with only the one named only.
func newCmdRoot(f *Factory, only string) *cobra.Command {
	root := &cobra.Command{
		Use:           "tend",
		Short:         "tend runs and guards your apps: a PM2-compatible process manager",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if !c.HasParent() {
			return usagef("%s (see tend --help)", flagError(err))
		}
		return usagef("%s (see tend %s --help)", flagError(err), c.Name())
	})
	var noDaemon, silent, noColor bool
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		f.IO.SetNoColor(noColor)
		if noDaemon && cmd.Name() != "start" {
			return usagef("--no-daemon goes with start (tend --no-daemon start app.js); for a foreground daemon alone, run tend daemon")
		}
		return nil
	}
	root.PersistentFlags().BoolVar(&noDaemon, "no-daemon", false, "run in the foreground instead of starting a daemon (containers, systemd)")
	root.PersistentFlags().BoolVarP(&silent, "silent", "s", false, "print no process table after an action")
	root.PersistentFlags().BoolVar(&noColor, "no-color", false, "no colours (as NO_COLOR=1 does)")
	for _, c := range commands {
		if only == "" || slices.Contains(c.names, only) {
			root.AddCommand(c.build(f))
		}
	}
	// Wrong argument counts are usage errors (exit 2), like bad flags.
	for _, c := range root.Commands() {
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usagef("%v (see tend %s --help)", err, cmd.Name())
				}
				return nil
			}
		}
	}
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q (see tend --help)", args[0])
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	return root
}
