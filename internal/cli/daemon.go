package cli

// This file runs a daemon in the CLI's process (tend daemon, tend --no-daemon start): the one
// file of this package that imports internal/daemon.

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/daemon"
	"github.com/tend-sh/tend/internal/home"
)

// DaemonOptions are daemon's.
type DaemonOptions struct {
	IO   *IOStreams
	Home string

	Background bool // started by the CLI: its output goes nowhere, so a failure goes to tend.log
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
	_ = cmd.Flags().MarkHidden("background")
	return cmd
}

func daemonRun(opts *DaemonOptions) error {
	err := daemon.Run(daemon.Options{
		Home: opts.Home, Version: Version, Foreground: !opts.Background,
		Stdout: opts.IO.Out, Stderr: opts.IO.ErrOut,
	})
	if err != nil && opts.Background {
		// Our stderr is /dev/null: leave the reason where the CLI that started us looks.
		if f, ferr := os.OpenFile(home.At(opts.Home).Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, home.FileMode); ferr == nil {
			fmt.Fprintf(f, "time=%s level=ERROR msg=%q\n", time.Now().Format(time.RFC3339), err.Error())
			f.Close()
		}
	}
	return err
}

// runForeground is `tend --no-daemon start …`: the daemon runs in this process, its apps' lines
// on our stdout, until SIGTERM or SIGINT; once it serves, a client that never starts a daemon
// of its own starts req.
func runForeground(f *Factory, req api.StartRequest) error {
	return daemon.Run(daemon.Options{
		Home: f.Home, Version: Version, Foreground: true, Stdout: f.IO.Out, Stderr: f.IO.ErrOut,
		ExitWhenDone: true,
		Ready: func() error {
			c := newUnixClient(f)
			c.AutoStart = false
			return c.Start(req)
		},
	})
}
