package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/client"
)

// IDOptions are id's.
type IDOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Name   string
}

// NewCmdID builds `tend id <name>`: the ids of an app, printed as PM2 prints them ([ 0, 3 ]).
func NewCmdID(f *Factory, runF func(*IDOptions) error) *cobra.Command {
	opts := &IDOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:   "id <name>",
		Short: "Print the ids of an app's processes, as PM2 does: [ 0, 3 ]",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return idRun(opts)
		},
	}
}

// idRun prints the ids of the processes of that name; none is [] and no error, as in PM2.
func idRun(opts *IDOptions) error {
	procs, err := selected(opts.Client, "", true)
	if err != nil {
		return err
	}
	ids := []int{}
	for _, p := range procs {
		if p.Name == opts.Name {
			ids = append(ids, p.PmID)
		}
	}
	b, _ := json.Marshal(ids)
	if err := writeInspect(opts.IO.Out, b); err != nil {
		return err
	}
	_, err = fmt.Fprintln(opts.IO.Out)
	return err
}

// InitOptions are init's.
type InitOptions struct {
	IO    *IOStreams
	Cwd   string
	Mode  string // "simple" or "" (PM2's two templates)
	Force bool
}

// NewCmdInit builds `tend init` (PM2's ecosystem): a starter ecosystem.config.js.
func NewCmdInit(f *Factory, runF func(*InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IO, Cwd: f.Cwd}
	cmd := &cobra.Command{
		Use:     "init [simple]",
		Aliases: []string{"ecosystem"},
		Short:   "Write a starter ecosystem.config.js in this folder",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Mode = args[0] // PM2: simple, or anything else for the full template
			}
			if runF != nil {
				return runF(opts)
			}
			return initRun(opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "replace an ecosystem.config.js.bak that exists")
	return cmd
}

const initSimple = `module.exports = {
  apps : [{
    name   : "app1",
    script : "./app.js"
  }]
}
`

const initFull = `// tend start ecosystem.config.js [--env production]; every key: docs/config.md
module.exports = {
  apps : [{
    name      : "app1",
    script    : "./app.js",
    instances : 1,          // "max" or a number: cluster mode on one shared port
    env       : {
      NODE_ENV: "development"
    },
    env_production : {
      NODE_ENV: "production"
    }
  }]
}
`

// initRun writes the template. PM2 overwrites an ecosystem.config.js that exists; tend moves it
// to ecosystem.config.js.bak first (the .bak it replaces, with --force only).
func initRun(opts *InitOptions) error {
	path := filepath.Join(opts.Cwd, "ecosystem.config.js")
	body := initFull
	if opts.Mode == "simple" {
		body = initSimple
	}
	if _, err := os.Lstat(path); err == nil {
		bak := path + ".bak"
		if _, err := os.Lstat(bak); err == nil && !opts.Force {
			return usagef("%s and %s exist; tend init --force replaces the .bak", path, bak)
		}
		if err := os.Rename(path, bak); err != nil {
			return fmt.Errorf("keep %s as %s: %v", path, bak, err)
		}
		fmt.Fprintf(opts.IO.ErrOut, "tend: note: the ecosystem.config.js that was there is now %s\n", bak)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %v", path, err)
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %v", path, err)
	}
	fmt.Fprintf(opts.IO.Out, "File %s generated\n", path)
	return nil
}

// NewCmdCompletion builds `tend completion [bash|zsh|fish]`: the shell's completion script.
// PM2's `completion install` edits ~/.bashrc; tend prints the line to add instead.
func NewCmdCompletion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:       "completion [bash|zsh|fish|install]",
		Short:     "Print the shell completion script (bash by default)",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish", "install"},
		RunE: func(cmd *cobra.Command, args []string) error {
			shell := "bash"
			if len(args) == 1 {
				shell = args[0]
			}
			root := cmd.Root()
			switch shell {
			case "bash":
				return root.GenBashCompletionV2(f.IO.Out, true)
			case "zsh":
				return root.GenZshCompletion(f.IO.Out)
			case "fish":
				return root.GenFishCompletion(f.IO.Out, true)
			case "install":
				fmt.Fprintln(f.IO.Out, "add this line to ~/.bashrc (or ~/.zshrc with zsh instead of bash):\n  source <(tend completion bash)")
				return nil
			}
			return usagef("tend completion takes bash, zsh, fish or install, not %q", shell)
		},
	}
}
