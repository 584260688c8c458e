package cli

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/client"
)

// ScaleOptions are scale's.
type ScaleOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Silent bool

	Name     string
	Count    int  // the number of instances, or the change with Relative
	Relative bool // +N or -N: Count is added to the instances the app has
}

// NewCmdScale builds `tend scale`.
func NewCmdScale(f *Factory, runF func(*ScaleOptions) error) *cobra.Command {
	opts := &ScaleOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:   "scale <name> <N|+N|-N>",
		Short: "Set the number of instances of an app (+N adds, -N removes)",
		// `scale api -1` must read -1 as a count, not as a flag, so flags are read here.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, raw []string) error {
			var args []string
			for i, a := range raw {
				switch {
				case a == "--":
					args = append(args, raw[i+1:]...)
				case a == "-s" || a == "--silent" || a == "--silent=true":
					opts.Silent = true
				case a == "--silent=false":
					opts.Silent = false
				case a == "--no-daemon":
					return usagef("--no-daemon works only with start: tend --no-daemon start <script>")
				case a == "-h" || a == "--help":
					return cmd.Help()
				case strings.HasPrefix(a, "-") && strings.TrimLeft(a[1:], "0123456789") != "":
					return usagef("unknown flag %s for scale (see tend scale --help)", a)
				default:
					args = append(args, a)
				}
				if a == "--" {
					break
				}
			}
			if len(args) != 2 {
				return usagef("scale takes an app name and a count, e.g. tend scale api 4 (got %d arguments)", len(args))
			}
			want := strings.TrimSpace(args[1])
			n, err := strconv.Atoi(want)
			if err != nil {
				return usagef("instance count %q must be a number, +N or -N", args[1])
			}
			opts.Name, opts.Count = args[0], n
			opts.Relative = strings.HasPrefix(want, "+") || strings.HasPrefix(want, "-")
			if runF != nil {
				return runF(opts)
			}
			return scaleRun(opts)
		},
	}
}

func scaleRun(opts *ScaleOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	name, n := opts.Name, opts.Count
	if opts.Relative {
		procs, err := c.Rows()
		if err != nil {
			return err
		}
		have := 0
		for _, p := range procs {
			if p.Name == name {
				have++
			}
		}
		if have == 0 {
			return notFoundf("no app named %q (see tend ls)", name)
		}
		n += have
	}
	if n < 1 {
		return usagef("scale %s to %d: an app keeps at least 1 instance; to stop it, use tend stop %s", name, n, name)
	}
	if err := c.Scale(name, n); err != nil {
		return err
	}
	return printTable(opts.IO, c, opts.Silent)
}
