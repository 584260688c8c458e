package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

// EnvOptions are env's.
type EnvOptions struct {
	IO          *IOStreams
	Client      func() (client.API, error)
	ID          string
	ShowSecrets bool
}

// NewCmdEnv builds `tend env <id>`.
func NewCmdEnv(f *Factory, runF func(*EnvOptions) error) *cobra.Command {
	opts := &EnvOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "env <id>",
		Short: "Print the environment an instance was started with, one KEY: value a line (secrets masked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return envRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.ShowSecrets, "show-secrets", false, "show the values of TOKEN, SECRET, PASSWORD, KEY… variables and URL passwords")
	return cmd
}

// envRun prints the instance's environment as PM2's `env` does (KEY: value), sorted by key.
func envRun(opts *EnvOptions) error {
	if !config.IsID(opts.ID) {
		return usagef("tend env takes an instance id, not %q (the ids are in tend ls)", opts.ID)
	}
	sel, err := selectedFrom(opts.Client, opts.ID, false, true)
	if err != nil {
		return err
	}
	env := sel[0].Pm2Env.ProcessEnv()
	var words []string
	if !opts.ShowSecrets {
		if c, err := opts.Client(); err == nil {
			words = secretWords(c)
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := env[k]
		if !opts.ShowSecrets {
			v = config.Masked(k, v, words)
		}
		fmt.Fprintf(opts.IO.Out, "%s: %s\n", k, v)
	}
	return nil
}
