package cli

// This file runs a daemon in the CLI's process (tend daemon, tend --no-daemon start): the one
// file of this package that imports internal/daemon. Every daemon runs under a keeper (DESIGN
// §4): the process the user or the CLI starts is the keeper, and the daemon is its child,
// started again by it whenever it dies.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/daemon"
	"github.com/tend-sh/tend/internal/home"
	"github.com/tend-sh/tend/internal/keeper"
)

// DaemonOptions are daemon's.
type DaemonOptions struct {
	IO   *IOStreams
	Home string

	Background   bool // started by the CLI: its output goes nowhere, so a failure goes to tend.log
	Child        bool // the daemon itself, under its keeper
	ExitWhenDone bool // the daemon stops once every app has (tend --no-daemon start)
}

// NewCmdDaemon builds `tend daemon`.
func NewCmdDaemon(f *Factory, runF func(*DaemonOptions) error) *cobra.Command {
	opts := &DaemonOptions{IO: f.IO, Home: f.Home}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the daemon in the foreground (for systemd and containers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return daemonRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Background, "background", false, "started by the CLI: no output to the terminal")
	cmd.Flags().BoolVar(&opts.Child, "child", false, "the daemon itself, run by its keeper")
	cmd.Flags().BoolVar(&opts.ExitWhenDone, "exit-when-done", false, "stop once every app has stopped")
	for _, n := range []string{"background", "child", "exit-when-done"} {
		_ = cmd.Flags().MarkHidden(n)
	}
	return cmd
}

func daemonRun(opts *DaemonOptions) error {
	if !opts.Child {
		return keeperRun(opts, nil)
	}
	err := daemon.Run(daemon.Options{
		Home: opts.Home, Version: Version, Foreground: !opts.Background, ExitWhenDone: opts.ExitWhenDone,
		Stdout: opts.IO.Out, Stderr: opts.IO.ErrOut,
	})
	if err != nil && opts.Background {
		// Our stderr is tend.log or nowhere: leave the reason where the CLI that started us looks.
		if f, ferr := home.OpenFile(home.At(opts.Home).Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND); ferr == nil {
			fmt.Fprintf(f, "time=%s level=ERROR msg=%q\n", time.Now().Format(time.RFC3339), err.Error())
			f.Close()
		}
	}
	return err
}

// appendEach is a writer that opens path for each record it appends: the daemon rotates
// tend.log (a rename), and a file held open would take the keeper's rare records to the
// rotated file for good. A record that cannot be written is dropped: the keeper has nowhere
// else to say so.
type appendEach string

func (a appendEach) Write(b []byte) (int, error) {
	f, err := home.OpenFile(string(a), os.O_CREATE|os.O_WRONLY|os.O_APPEND)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Write(b)
}

// keeperRun runs this process as the keeper of a daemon it starts as its child (tend daemon
// --child, with the same flags). ready, if set, runs once the first daemon serves.
func keeperRun(opts *DaemonOptions, ready func() error) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary to run the daemon: %v", err)
	}
	argv := []string{exe, "daemon", "--child"}
	if opts.Background {
		argv = append(argv, "--background")
	}
	if opts.ExitWhenDone {
		argv = append(argv, "--exit-when-done")
	}
	var logOut io.Writer = appendEach(home.At(opts.Home).Log)
	if !opts.Background {
		// In the foreground (a container's log), what the keeper says shows with the rest.
		logOut = io.MultiWriter(logOut, os.Stderr)
	}
	ko := keeper.Options{
		Home: opts.Home, Version: Version, Argv: argv,
		Env:    append(os.Environ(), "TEND_HOME="+opts.Home),
		Stdout: os.Stdout, Stderr: os.Stderr, Ready: ready,
		Log: slog.New(slog.NewTextHandler(logOut, nil)),
	}
	if _, ok := os.LookupEnv(keeper.EnvResume); ok {
		err = keeper.Resume(ko)
	} else {
		err = keeper.Run(ko)
	}
	var de keeper.DaemonExit
	if errors.As(err, &de) {
		return exitStatus(de.Code) // the daemon has said why on our shared stderr
	}
	return err
}

// exitStatus ends the CLI with that status and nothing more said.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// runForeground is `tend --no-daemon start …`: a keeper and its daemon run from this process,
// the apps' lines on our stdout, until SIGTERM or SIGINT or until every app has stopped; once
// the daemon serves, a client that never starts a daemon of its own starts req.
func runForeground(f *Factory, req api.StartRequest) error {
	return keeperRun(&DaemonOptions{IO: f.IO, Home: f.Home, ExitWhenDone: true}, func() error {
		c := newUnixClient(f)
		c.AutoStart = false
		return c.Start(req)
	})
}
