// Package cli holds tend's commands. Each command is an Options struct filled by its flags and a
// run function; every command writes through IO, never to os.Stdout directly.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
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

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out      io.Writer
	Err      io.Writer
	OutIsTTY bool
}

// Env is what every command shares: its IO, TEND_HOME, and a lazily made client.
type Env struct {
	IO       IO
	Home     string
	Cwd      string
	Environ  []string
	NoDaemon bool
	Silent   bool
	client   *client.Client
}

// Client returns the daemon client, made on first use so that a command failing its flag
// checks never dials.
func (e *Env) Client() *client.Client {
	if e.client == nil {
		e.client = client.New(e.Home, Version, e.IO.Err)
		if d, err := time.ParseDuration(os.Getenv("TEND_TIMEOUT")); err == nil && d > 0 {
			e.client.Timeout = d
		}
	}
	return e.client
}

// usageError is a bad flag or value: exit code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// Main runs the CLI with the process's arguments and returns the exit code.
func Main() int {
	env := &Env{
		IO:      IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, OutIsTTY: term.IsTerminal(int(os.Stdout.Fd()))},
		Environ: os.Environ(),
	}
	env.Cwd, _ = os.Getwd()
	env.Home = HomeDir()
	return Run(env, os.Args[1:])
}

// HomeDir is $TEND_HOME, or ~/.tend.
func HomeDir() string {
	if h := os.Getenv("TEND_HOME"); h != "" {
		if abs, err := filepath.Abs(h); err == nil {
			return abs
		}
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/tmp"
	}
	return filepath.Join(home, ".tend")
}

// Run executes args and maps the outcome to an exit code, in one place.
func Run(env *Env, args []string) int {
	root := NewRoot(env)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(env.IO.Err, "tend: "+oneLine(err.Error()))
	return exitCode(err)
}

func exitCode(err error) int {
	var ce *client.Error
	var ue usageError
	switch {
	case errors.As(err, &ue), errors.Is(err, config.ErrInvalid):
		return ExitUsage
	case errors.As(err, &ce):
		switch ce.Kind {
		case "not_found":
			return ExitNotFound
		case "invalid":
			return ExitUsage
		}
		return ExitFailure
	case errors.Is(err, errNotFound):
		return ExitNotFound
	case errors.Is(err, client.ErrUnreachable):
		return ExitUnreachable
	}
	return ExitFailure
}

var errNotFound = errors.New("not found")

// notFound is an errNotFound whose message is only the sentence given.
type notFound struct{ msg string }

func (e notFound) Error() string        { return e.msg }
func (e notFound) Is(target error) bool { return target == errNotFound }

var strconvError = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: strconv\.(\w+).*$`)

// plainFlagError says what a flag wants instead of quoting Go's parser.
func plainFlagError(err error) string {
	m := strconvError.FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	want := "a whole number"
	switch {
	case strings.HasPrefix(m[3], "ParseBool"):
		want = "true or false"
	case strings.HasPrefix(m[3], "ParseFloat"):
		want = "a number"
	}
	flag, _, _ := strings.Cut(m[2], ",")
	return fmt.Sprintf("invalid value %q for %s: want %s", m[1], flag, want)
}

// oneLine makes an error one line: several failures (an errors.Join) are kept, joined by "; ".
func oneLine(s string) string {
	var parts []string
	for _, p := range strings.Split(s, "\n") {
		if p = strings.TrimSpace(strings.TrimPrefix(p, config.ErrInvalid.Error()+": ")); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

// NewRoot builds the command tree.
func NewRoot(env *Env) *cobra.Command {
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
	root.SetOut(env.IO.Out)
	root.SetErr(env.IO.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%s (see tend %s --help)", plainFlagError(err), c.Name())
	})
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if env.NoDaemon && cmd.Name() != "start" {
			return usagef("--no-daemon goes with start (tend --no-daemon start app.js); for a foreground daemon alone, run tend daemon")
		}
		return nil
	}
	root.PersistentFlags().BoolVar(&env.NoDaemon, "no-daemon", false, "run in the foreground instead of starting a daemon (containers, systemd)")
	root.PersistentFlags().BoolVarP(&env.Silent, "silent", "s", false, "print no process table after an action")
	root.AddCommand(
		newStartCmd(env),
		newActionCmd(env, "stop", "Stop apps (they stay in the list)", nil),
		newActionCmd(env, "restart", "Restart apps", nil),
		newActionCmd(env, "reload", "Replace apps' processes one instance at a time, without refusing or failing a request", nil),
		newScaleCmd(env),
		newMsgCmd(env),
		newSendCmd(env),
		newActionCmd(env, "delete", "Stop apps and remove them from the list", []string{"del"}),
		newListCmd(env),
		newJlistCmd(env),
		newDescribeCmd(env),
		newLogsCmd(env),
		newFlushCmd(env),
		newKillCmd(env),
		newPingCmd(env),
		newSignalCmd(env),
		newPidCmd(env),
		newDaemonCmd(env),
	)
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
