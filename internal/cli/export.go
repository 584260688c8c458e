package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/export"
)

// ExportOptions are `tend export`'s.
type ExportOptions struct {
	IO      *IOStreams
	Client  func() (client.API, error)
	Cwd     string
	Environ []string

	Format  string
	Config  string // "": the running apps
	Only    string
	EnvName string
	Out     string
	Image   string
}

// NewCmdExport builds `tend export`: a config's apps, or the running ones, as systemd units,
// Kubernetes manifests, a compose file or Nomad jobs.
func NewCmdExport(f *Factory, runF func(*ExportOptions) error) *cobra.Command {
	o := &ExportOptions{IO: f.IO, Client: f.Client, Cwd: f.Cwd, Environ: f.Environ}
	cmd := &cobra.Command{
		Use:   "export <systemd|kubernetes|compose|nomad> [config]",
		Short: "Write apps (a config's, or the running ones) as systemd units, Kubernetes manifests, a compose file or Nomad jobs",
		Example: `  tend export kubernetes ecosystem.config.js --image registry.example/api:1.4
  tend export systemd --out /etc/systemd/system
  tend export compose > compose.yaml
  tend export nomad --only api --out jobs/`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Format = args[0]
			if o.Format == "k8s" {
				o.Format = "kubernetes"
			}
			if !slices.Contains(export.Formats, o.Format) {
				return usagef("unknown export format %q; the formats are %s", o.Format, strings.Join(export.Formats, ", "))
			}
			if len(args) == 2 {
				o.Config = args[1]
			}
			if runF != nil {
				return runF(o)
			}
			return exportRun(o)
		},
	}
	cmd.Flags().StringVar(&o.Only, "only", "", "only these apps (comma-separated names)")
	cmd.Flags().StringVar(&o.EnvName, "env", "", "with a config file: merge env_<name> over env")
	cmd.Flags().StringVar(&o.Out, "out", "", "write one file per app (one compose.yaml) into this folder instead of printing")
	cmd.Flags().StringVar(&o.Image, "image", "", "the container image of the apps (kubernetes, compose, nomad); default <app>:latest, to build")
	return cmd
}

func exportRun(o *ExportOptions) error {
	var specs []config.AppSpec
	if o.Config != "" {
		loaded, err := loadConfig(o.IO, o.Cwd, o.Environ, o.Config, o.EnvName, o.Only)
		if err != nil {
			return err
		}
		specs = loaded
	} else {
		c, err := o.Client()
		if err != nil {
			return err
		}
		if !c.Running() {
			return usagef("no tend daemon runs, so no apps to export: name a config (tend export %s ecosystem.config.js)", o.Format)
		}
		if specs, err = c.Specs(); err != nil {
			return err
		}
		if only := splitNames(o.Only); len(only) > 0 {
			specs = slices.DeleteFunc(specs, func(s config.AppSpec) bool { return !slices.Contains(only, s.Name) })
		}
	}
	if len(specs) == 0 {
		return usagef("no app to export (see tend ls, or --only)")
	}
	files, err := export.Export(o.Format, specs, export.Options{Image: o.Image})
	if err != nil {
		return err
	}
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return fmt.Errorf("--out %s: %v", o.Out, err)
		}
		for _, f := range files {
			path := filepath.Join(abs(o.Cwd, o.Out), f.Name)
			if err := os.WriteFile(path, f.Content, 0o644); err != nil {
				return fmt.Errorf("write %s: %v", path, err)
			}
			fmt.Fprintln(o.IO.Out, path)
		}
		return nil
	}
	for i, f := range files {
		switch {
		case len(files) == 1:
		case o.Format == "kubernetes":
			if i > 0 {
				fmt.Fprintln(o.IO.Out, "---") // one YAML stream: kubectl apply -f - takes it whole
			}
		case o.Format == "nomad":
			if i > 0 {
				fmt.Fprintln(o.IO.Out)
			}
		default:
			fmt.Fprintf(o.IO.Out, "# ==> %s <==\n", f.Name)
		}
		o.IO.Out.Write(f.Content)
	}
	if len(files) > 1 && (o.Format == "systemd" || o.Format == "nomad") {
		fmt.Fprintf(o.IO.ErrOut, "tend: note: %d files printed one after the other; --out DIR writes each to its own file\n", len(files))
	}
	return nil
}
