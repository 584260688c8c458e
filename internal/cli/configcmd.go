package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/config"
)

// ValidateOptions are config validate's.
type ValidateOptions struct {
	IO      *IOStreams
	Cwd     string
	Environ []string // what the apps would inherit: its PATH finds their interpreters
	File    string
}

// NewCmdConfig builds `tend config`, whose one verb is validate.
func NewCmdConfig(f *Factory, runF func(*ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{IO: f.IO, Cwd: f.Cwd, Environ: f.Environ}
	cmd := &cobra.Command{Use: "config", Short: "Check a config file", Args: cobra.NoArgs}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate <file>",
		Short: "Every problem of a config file at once, file:line each; exit 2 if there is one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if runF != nil {
				return runF(opts)
			}
			return validateRun(opts)
		},
	})
	return cmd
}

func validateRun(opts *ValidateOptions) error {
	problems, apps := config.Validate(opts.File, abs(opts.Cwd, opts.File), envMap(opts.Environ))
	errs := 0
	for _, p := range problems {
		fmt.Fprintln(opts.IO.Out, p.String())
		if !p.Warning {
			errs++
		}
	}
	if errs > 0 {
		fmt.Fprintf(opts.IO.Out, "%s in %s\n", plural(errs, "problem"), opts.File)
		return exitStatus(ExitUsage)
	}
	fmt.Fprintf(opts.IO.Out, "%s: %s, no problem\n", opts.File, plural(apps, "app"))
	return nil
}

// plural is "1 app", "2 apps".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
