package cli

import "github.com/spf13/cobra"

// PM2's commands that tend does not have, each with what to use instead, so that a script or a
// habit gets a one-line answer rather than "unknown command". docs/coming-from-pm2.md lists them.
var pm2Only = []struct {
	names []string
	why   string
}{
	{[]string{"link", "unlink", "plus", "register", "login", "logout", "open", "monitor", "unmonitor"},
		"works with PM2.io, a hosted dashboard; tend has none (tend monit, tend describe, tend events and tend metrics show what tend knows)"},
	{[]string{"deploy"}, "copies code over ssh; tend leaves that to your tools (git, rsync, CI) and runs what they leave: tend startOrReload ecosystem.config.js"},
	{[]string{"serve", "expose"}, "serves a folder over HTTP; run a static server as an app instead: tend start \"python3 -m http.server 8080\""},
	{[]string{"report"}, "gathers diagnostics; tend's are in tend.log (in $TEND_HOME), tend describe and tend jlist"},
	{[]string{"trigger"}, "calls an @pm2/io action; send the app a message instead: tend msg <app> '<json>'"},
	{[]string{"uninstall", "module:generate", "module:update", "publish", "package"}, "manages PM2 modules; tend has no modules (log rotation, which pm2-logrotate adds, is built in)"},
	{[]string{"inspect", "profile:cpu", "profile:mem"}, "drives @pm2/io's profiler; start the app with node's --inspect (tend start app.js --node-args=--inspect)"},
	{[]string{"backward", "forward", "pull"}, "moves an app's git checkout; use git in the app's folder, then tend reload <app>"},
	{[]string{"sysmonit", "autoinstall", "slist", "sysinfos"}, "is not in tend"},
}

// NewCmdPM2Only builds the command that answers for a PM2 command tend does not have.
func NewCmdPM2Only(f *Factory, name, why string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              "PM2's " + name + ": not in tend",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("no %s here: PM2's %s %s (see docs/coming-from-pm2.md)", name, name, why)
		},
	}
}

func pm2OnlyCommands() []commandEntry {
	var out []commandEntry
	for _, c := range pm2Only {
		for _, n := range c.names {
			out = append(out, commandEntry{[]string{n}, func(f *Factory) *cobra.Command { return NewCmdPM2Only(f, n, c.why) }})
		}
	}
	return out
}
