package cli

// tend startup: the systemd unit that starts tend at boot and brings back what tend save saved.

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// StartupOptions are startup's and unstartup's.
type StartupOptions struct {
	IO      *IOStreams
	Home    string
	Environ []string
	Exe     func() (string, error)
	Install bool
	Remove  bool // unstartup
	// Root says the unit is a system one (run as root); else it is the user's own.
	Root bool
	// Run runs an installing command (systemctl, loginctl); tests replace it.
	Run func(name string, args ...string) error
}

// NewCmdStartup builds `tend startup [systemd]`.
func NewCmdStartup(f *Factory, runF func(*StartupOptions) error) *cobra.Command {
	opts := newStartupOptions(f)
	cmd := &cobra.Command{
		Use:   "startup [systemd]",
		Short: "Print (or --install) the systemd unit that starts tend at boot and resurrects the saved apps",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] != "systemd" {
				return usagef("tend startup knows systemd only, not %q", args[0])
			}
			if runF != nil {
				return runF(opts)
			}
			return startupRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Install, "install", false, "write the unit and enable it")
	return cmd
}

// NewCmdUnstartup builds `tend unstartup`.
func NewCmdUnstartup(f *Factory, runF func(*StartupOptions) error) *cobra.Command {
	opts := newStartupOptions(f)
	opts.Remove = true
	return &cobra.Command{
		Use:   "unstartup [systemd]",
		Short: "Disable and remove the unit tend startup --install wrote",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return startupRun(opts)
		},
	}
}

func newStartupOptions(f *Factory) *StartupOptions {
	return &StartupOptions{IO: f.IO, Home: f.Home, Environ: f.Environ, Exe: os.Executable, Root: os.Geteuid() == 0,
		Run: func(name string, args ...string) error {
			out, err := exec.Command(name, args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
			return nil
		}}
}

// unit describes the unit for this user and $TEND_HOME.
type unit struct {
	Path    string // where it is installed
	Name    string
	Text    string
	Systemd []string // systemctl's first arguments: --user for a user unit
}

func startupUnit(opts *StartupOptions) (unit, error) {
	exe, err := opts.Exe()
	if err != nil {
		return unit{}, fmt.Errorf("find this tend binary: %v", err)
	}
	if strings.Contains(exe, "/go-build") {
		fmt.Fprintf(opts.IO.ErrOut, "tend: warning: this tend is a `go run` build, deleted when it exits; build it (make build) and run startup from the binary\n")
	}
	u, err := user.Current()
	if err != nil {
		return unit{}, fmt.Errorf("who am I: %v", err)
	}
	path := ""
	for _, kv := range opts.Environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	// The PATH of this shell: apps find node (nvm's included) at boot as they do now.
	if !strings.Contains(":"+path+":", ":"+filepath.Dir(exe)+":") {
		path = filepath.Dir(exe) + ":" + path
	}
	un := unit{Name: "tend.service", Systemd: []string{"--user"}}
	wanted, userLine := "default.target", ""
	if opts.Root {
		un.Name, un.Systemd = "tend-"+u.Username+".service", nil
		un.Path = filepath.Join("/etc/systemd/system", un.Name)
		wanted, userLine = "multi-user.target", "User="+u.Username+"\n"
	} else {
		cfg, err := os.UserConfigDir()
		if err != nil {
			return unit{}, fmt.Errorf("find the user's systemd folder: %v", err)
		}
		un.Path = filepath.Join(cfg, "systemd", "user", un.Name)
	}
	un.Text = fmt.Sprintf(`[Unit]
Description=tend process manager (%s, %s)
After=network.target

[Service]
Type=simple
%sEnvironment="PATH=%s"
Environment="TEND_HOME=%s"
ExecStart=%s daemon
# "-": no dump yet (tend save never ran) is no failure.
ExecStartPost=-%s resurrect -s
# SIGTERM to tend alone: it stops the apps gracefully, each with its kill_timeout.
KillMode=mixed
TimeoutStopSec=120
Restart=on-failure

[Install]
WantedBy=%s
`, u.Username, opts.Home, userLine, path, opts.Home, exe, exe, wanted)
	return un, nil
}

func startupRun(opts *StartupOptions) error {
	un, err := startupUnit(opts)
	if err != nil {
		return err
	}
	systemctl := func(args ...string) error { return opts.Run("systemctl", append(slices.Clone(un.Systemd), args...)...) }
	switch {
	case opts.Remove:
		_ = systemctl("disable", un.Name)
		if err := os.Remove(un.Path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %v", un.Path, err)
		}
		_ = systemctl("daemon-reload")
		fmt.Fprintf(opts.IO.Out, "removed %s; tend no longer starts at boot\n", un.Path)
		return nil
	case !opts.Install:
		fmt.Fprintf(opts.IO.Out, "# %s\n%s\n", un.Path, un.Text)
		fmt.Fprintf(opts.IO.Out, "# To install and enable it: tend startup --install\n")
		fmt.Fprintf(opts.IO.Out, "# At boot it brings back what `tend save` saved last: run tend save after each change.\n")
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(un.Path), 0o755); err != nil {
		return fmt.Errorf("create %s: %v", filepath.Dir(un.Path), err)
	}
	if err := os.WriteFile(un.Path, []byte(un.Text), 0o644); err != nil {
		return fmt.Errorf("write %s: %v", un.Path, err)
	}
	if err := systemctl("daemon-reload"); err != nil {
		return err
	}
	if err := systemctl("enable", un.Name); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "wrote and enabled %s\n", un.Path)
	if !opts.Root {
		// A user's units run only while they are logged in, unless lingering is on.
		u, _ := user.Current()
		if err := opts.Run("loginctl", "enable-linger", u.Username); err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "tend: warning: a user unit starts at boot only with lingering on, and %v; run: sudo loginctl enable-linger %s\n", err, u.Username)
		}
	}
	return nil
}
