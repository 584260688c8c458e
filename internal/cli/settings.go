package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

// SettingsOptions are set's, unset's and get's.
type SettingsOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Key    string
	Value  string
	Unset  bool
}

// NewCmdSet builds `tend set <key> <value>`: log rotation's settings, under tend's names or
// pm2-logrotate's (pm2-logrotate:max_size), for every app that does not set its own; the secret
// words; the sampler's cadence and where the daemon serves /metrics.
func NewCmdSet(f *Factory, runF func(*SettingsOptions) error) *cobra.Command {
	opts := &SettingsOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "set <key> <value>",
		Short: "Change a setting: log rotation (max_size, retain, compress, rotate_interval…, or pm2-logrotate's names), secret_keys, metrics_interval, metrics_listen",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key, opts.Value = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			return setRun(opts)
		},
	}
	cmd.Flags().SetInterspersed(false) // a value such as -1 is the value, not a flag
	return cmd
}

// NewCmdUnset builds `tend unset <key>`: the default holds again.
func NewCmdUnset(f *Factory, runF func(*SettingsOptions) error) *cobra.Command {
	opts := &SettingsOptions{IO: f.IO, Client: f.Client, Unset: true}
	return &cobra.Command{
		Use:   "unset <key>",
		Short: "Go back to a setting's default",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key = args[0]
			if runF != nil {
				return runF(opts)
			}
			return setRun(opts)
		},
	}
}

func setRun(opts *SettingsOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	res, err := c.Set(api.SettingRequest{Key: opts.Key, Value: opts.Value, Unset: opts.Unset})
	if err != nil {
		return err
	}
	if res.Key == "" {
		fmt.Fprintf(opts.IO.ErrOut, "tend: note: %s is accepted; it has no effect in tend (rotation is checked at every write)\n", opts.Key)
		return nil
	}
	if res.Key == "secret_keys" && !opts.Unset && !strings.HasPrefix(opts.Value, "+") && opts.Value != "default" {
		fmt.Fprintln(opts.IO.ErrOut, "tend: note: these words replace the default ones; tend set secret_keys +WORD adds to them instead")
	}
	fmt.Fprint(opts.IO.Out, only(settingsText(res), res.Key))
	return nil
}

// settingsText is every setting in effect, "key: value" a line.
func settingsText(s api.Settings) string {
	return s.Effective.String() + "secret_keys: " + strings.Join(s.SecretKeys, ",") + "\n" + s.Metrics.String()
}

// secretWords are the words that make a variable a secret, as the daemon has them (the
// defaults when it cannot say).
func secretWords(c client.API) []string {
	if s, err := c.Settings(); err == nil && len(s.SecretKeys) > 0 {
		return s.SecretKeys
	}
	return nil
}

// NewCmdGet builds `tend get [key]`: the settings in effect.
func NewCmdGet(f *Factory, runF func(*SettingsOptions) error) *cobra.Command {
	opts := &SettingsOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:   "get [key]",
		Short: "Show the settings in effect (tend set changes them)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Key = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return getRun(opts)
		},
	}
}

func getRun(opts *SettingsOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	res, err := c.Settings()
	if err != nil {
		return err
	}
	all := settingsText(res)
	if opts.Key == "" {
		fmt.Fprint(opts.IO.Out, all)
		return nil
	}
	key, known := config.SettingName(opts.Key)
	if !known {
		return usagef("unknown setting %q; the settings are: %s", opts.Key, strings.Join(config.SettingKeys(), ", "))
	}
	if key == "" {
		// Accepted by set, as PM2 takes it; a script that reads it back gets nothing, not a failure.
		fmt.Fprintf(opts.IO.ErrOut, "tend: note: %s has no effect in tend\n", opts.Key)
		fmt.Fprintln(opts.IO.Out)
		return nil
	}
	_, v, _ := strings.Cut(strings.TrimSuffix(only(all, key), "\n"), ": ")
	fmt.Fprintln(opts.IO.Out, v)
	return nil
}

// only is the line of key in lines of "key: value".
func only(lines, key string) string {
	for _, l := range strings.SplitAfter(lines, "\n") {
		if strings.HasPrefix(l, key+": ") {
			return l
		}
	}
	return ""
}

// ReloadLogsOptions are reloadLogs'.
type ReloadLogsOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
}

// NewCmdReloadLogs builds `tend reloadLogs`: every log file is reopened, for an external
// logrotate that moved them (PM2's reloadLogs).
func NewCmdReloadLogs(f *Factory, runF func(*ReloadLogsOptions) error) *cobra.Command {
	opts := &ReloadLogsOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:   "reloadLogs",
		Short: "Reopen every log file (after an external logrotate moved them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			c, err := opts.Client()
			if err != nil {
				return err
			}
			if err := c.ReloadLogs(); err != nil {
				return err
			}
			fmt.Fprintln(opts.IO.Out, "reopened every log file")
			return nil
		},
	}
}

// NewCmdInstall builds `tend install <module>`: tend has no modules; pm2-logrotate's and
// pm2-metrics' work is built in, so installing them is said to be done already.
func NewCmdInstall(f *Factory, runF func(string) error) *cobra.Command {
	return &cobra.Command{
		Use:   "install <module>",
		Short: "PM2's module install: pm2-logrotate and pm2-metrics are built in; tend has no other modules",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(args[0])
			}
			switch args[0] {
			case "pm2-logrotate":
				fmt.Fprintln(f.IO.Out, "pm2-logrotate is built into tend: logs rotate already (tend get shows how; tend set pm2-logrotate:<key> <value> changes it)")
			case "pm2-metrics", "pm2-prometheus-exporter":
				fmt.Fprintln(f.IO.Out, args[0]+" is built into tend: tend metrics prints Prometheus' format; tend set metrics_listen 127.0.0.1:9615 serves /metrics")
			default:
				return usagef("tend has no modules; %s is not built in (pm2-logrotate and pm2-metrics are)", args[0])
			}
			return nil
		},
	}
}
