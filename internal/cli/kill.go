package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/client"
)

// KillOptions are kill's.
type KillOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Home   string // named when no daemon runs
}

// NewCmdKill builds `tend kill`.
func NewCmdKill(f *Factory, runF func(*KillOptions) error) *cobra.Command {
	opts := &KillOptions{IO: f.IO, Client: f.Client, Home: f.Home}
	return &cobra.Command{
		Use:   "kill",
		Short: "Stop and delete every app, then stop the daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return killRun(opts)
		},
	}
}

// killRun stops the daemon, if one runs, and returns once it is gone, so the next command meets
// a new one.
func killRun(opts *KillOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	if !c.Running() {
		fmt.Fprintln(opts.IO.Out, "no tend daemon is running for "+opts.Home)
		return nil
	}
	if err := c.Kill(); err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.Out, "daemon stopped, every app deleted")
	return nil
}

// PingOptions are ping's.
type PingOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
}

// NewCmdPing builds `tend ping`.
func NewCmdPing(f *Factory, runF func(*PingOptions) error) *cobra.Command {
	opts := &PingOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:   "ping",
		Short: "Check that the daemon answers (starting it if needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return pingRun(opts)
		},
	}
}

func pingRun(opts *PingOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	p, err := c.Ping()
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "pong (daemon pid %d, version %s, home %s)\n", p.Pid, p.Version, p.Home)
	return nil
}

// UpdateOptions are update's.
type UpdateOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	// Exe is the binary the new daemon runs: this CLI's own, by the path it was run from.
	Exe func() (string, error)
}

// NewCmdUpdate builds `tend update`.
func NewCmdUpdate(f *Factory, runF func(*UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{IO: f.IO, Client: f.Client, Exe: os.Executable}
	return &cobra.Command{
		Use:     "update",
		Aliases: []string{"updatePM2"},
		Short:   "Replace the daemon with this tend binary, keeping every app running",
		Long: `Replace the daemon, and its keeper when their version differs, with the tend binary
now at this command's path. Every app keeps running with its pid, its logs and its sockets.
Put the new binary in place with mv or install (cp over a running binary fails with
"text file busy"), then run tend update.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return updateRun(opts)
		},
	}
}

func updateRun(opts *UpdateOptions) error {
	exe, err := opts.Exe()
	if err != nil {
		return fmt.Errorf("find this tend binary: %v", err)
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	p, err := c.Update(exe)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "tend updated: daemon pid %d runs version %s from %s; every app kept running\n", p.Pid, p.Version, exe)
	return nil
}
