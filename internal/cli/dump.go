package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/home"
	"github.com/tend-sh/tend/internal/state"
)

// SaveOptions are save's.
type SaveOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Force  bool
}

// NewCmdSave builds `tend save` (PM2's alias: dump).
func NewCmdSave(f *Factory, runF func(*SaveOptions) error) *cobra.Command {
	opts := &SaveOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "save",
		Aliases: []string{"dump"},
		Short:   "Save the list of apps for tend resurrect (PM2's dump.pm2, in $TEND_HOME)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return saveRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "write the dump even with no app")
	return cmd
}

func saveRun(opts *SaveOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	res, err := c.Save(opts.Force)
	if err != nil {
		return err
	}
	if res.Backup != "" {
		fmt.Fprintf(opts.IO.Out, "saved %d instances in %s (the one before is %s)\n", res.Count, res.Path, res.Backup)
	} else {
		fmt.Fprintf(opts.IO.Out, "saved %d instances in %s\n", res.Count, res.Path)
	}
	return nil
}

// ResurrectOptions are resurrect's.
type ResurrectOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Home   string
	Cwd    string
	File   string // "" for $TEND_HOME/dump.pm2
	Silent bool
	Wait   time.Duration // how long to wait for the apps to leave launching (as start waits)
}

// NewCmdResurrect builds `tend resurrect [file]`.
func NewCmdResurrect(f *Factory, runF func(*ResurrectOptions) error) *cobra.Command {
	opts := &ResurrectOptions{IO: f.IO, Client: f.Client, Home: f.Home, Cwd: f.Cwd, Wait: 15 * time.Second}
	return &cobra.Command{
		Use:   "resurrect [file]",
		Short: "Bring back the apps tend save saved (or those of PM2's ~/.pm2/dump.pm2)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.File = args[0]
			}
			opts.Silent = boolFlag(cmd, "silent")
			if runF != nil {
				return runF(opts)
			}
			return resurrectRun(opts)
		},
	}
}

func resurrectRun(opts *ResurrectOptions) error {
	apps, path, err := readDump(opts)
	if err != nil {
		return err
	}
	reg := state.Registry{}
	for _, a := range apps {
		spec := a.Spec
		if !a.Resolved {
			if err := config.Resolve(&spec, spec.Cwd); err != nil {
				return fmt.Errorf("dump %s: %w", path, err)
			}
		}
		ra := state.App{Spec: spec}
		for _, in := range a.Instances {
			ra.Instances = append(ra.Instances, state.Instance{ID: in.ID, Index: in.Index, Status: in.Status})
		}
		reg.Apps = append(reg.Apps, ra)
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	res, err := c.Resurrect(reg)
	if err != nil {
		return err
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "tend: %s already run; left as they are\n", strings.Join(res.Skipped, ", "))
	}
	settle(c, res.IDs, opts.Wait)
	return printTable(opts.IO, c, opts.Silent)
}

// settle waits, at most max, until none of the instances ids is launching any more, as a start
// waits for its apps: the table printed after shows where they landed.
func settle(c client.API, ids []int, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		procs, err := c.List()
		if err != nil {
			return
		}
		if !slices.ContainsFunc(procs, func(p api.Process) bool {
			return slices.Contains(ids, p.PmID) && p.Pm2Env.Status == "launching"
		}) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readDump reads the dump named, or $TEND_HOME/dump.pm2, falling back to its .bak when that one
// is missing or cannot be read, as PM2 does.
func readDump(opts *ResurrectOptions) ([]config.DumpApp, string, error) {
	if opts.File != "" {
		path := abs(opts.Cwd, opts.File)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, path, usagef("dump %s: %v", path, home.PathCause(err))
		}
		apps, err := config.ParseDump(data, path)
		return apps, path, err
	}
	path := home.At(opts.Home).Dump
	data, err := os.ReadFile(path)
	var apps []config.DumpApp
	if err == nil {
		if apps, err = config.ParseDump(data, path); err == nil {
			return apps, path, nil
		}
	}
	bak := path + ".bak"
	if bdata, berr := os.ReadFile(bak); berr == nil {
		if bapps, berr := config.ParseDump(bdata, bak); berr == nil {
			moved := ""
			if !errors.Is(err, fs.ErrNotExist) {
				// PM2 deletes a broken dump here, so that the next save starts clean; it is moved
				// aside instead, for whoever wants to see what broke it.
				if os.Rename(path, path+".broken") == nil {
					moved = "; it is now " + path + ".broken"
				}
			}
			fmt.Fprintf(opts.IO.ErrOut, "tend: warning: %s: %v; using %s%s\n", path, oneLineCause(err), bak, moved)
			return bapps, bak, nil
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, usagef("no dump at %s; tend save writes one (or name a file: tend resurrect ~/.pm2/dump.pm2)", path)
	}
	return nil, path, err
}

func oneLineCause(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	return home.PathCause(err).Error()
}
