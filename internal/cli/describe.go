package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

// selected fetches the list (without the environments, which only describe and env read) and
// applies the selector target, or selects every process for all.
func selected(clientF func() (client.API, error), target string, all bool) ([]api.Process, error) {
	return selectedFrom(clientF, target, all, false)
}

// selectedFrom is selected, with each process's environment when withEnv.
func selectedFrom(clientF func() (client.API, error), target string, all, withEnv bool) ([]api.Process, error) {
	c, err := clientF()
	if err != nil {
		return nil, err
	}
	list := c.Rows
	if withEnv {
		list = c.List
	}
	procs, err := list()
	if err != nil {
		return nil, err
	}
	if all {
		return procs, nil
	}
	return selectProcs(procs, target)
}

// optionalTarget is an optional selector argument: the target, or all for none.
func optionalTarget(args []string) (target string, all bool) {
	if len(args) == 0 {
		return "", true
	}
	return args[0], false
}

// DescribeOptions are describe's.
type DescribeOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Now    func() time.Time

	Target      string
	ShowSecrets bool
	Environ     []string // this shell's: the env section shows what differs from it, as PM2's does
}

// NewCmdDescribe builds `tend describe`.
func NewCmdDescribe(f *Factory, runF func(*DescribeOptions) error) *cobra.Command {
	opts := &DescribeOptions{IO: f.IO, Client: f.Client, Now: time.Now, Environ: f.Environ}
	cmd := &cobra.Command{
		Use:     "describe <name|id>",
		Aliases: []string{"desc", "info", "show"},
		Short:   "Show everything about an app's instances and what differs in their environment (secrets masked)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			if runF != nil {
				return runF(opts)
			}
			return describeRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.ShowSecrets, "show-secrets", false, "show the values of --token, --password… arguments and URL passwords")
	return cmd
}

func describeRun(opts *DescribeOptions) error {
	sel, err := selectedFrom(opts.Client, opts.Target, false, true)
	if err != nil {
		return err
	}
	m := masker{show: opts.ShowSecrets}
	if !m.show {
		if c, err := opts.Client(); err == nil {
			m.words = secretWords(c)
		}
	}
	local := envMap(opts.Environ)
	for _, p := range sel {
		describe(opts.IO, p, opts.Now(), m)
		describeEnv(opts.IO, p, local, m)
	}
	return nil
}

// masker hides secret values unless show.
type masker struct {
	show  bool
	words []string
}

func (m masker) args(argv []string) []string {
	if m.show || argv == nil {
		return argv
	}
	return config.MaskedArgs(argv, m.words)
}

func (m masker) value(k, v string) string {
	if m.show {
		return v
	}
	return config.Masked(k, v, m.words)
}

// describeEnv prints the variables of the instance that differ from this shell's (PM2's
// "Divergent env variables from local env"), secrets masked.
func describeEnv(io *IOStreams, p api.Process, local map[string]string, m masker) {
	env := p.Pm2Env.ProcessEnv()
	var keys []string
	w := 0
	for k, v := range env {
		if lv, ok := local[k]; !ok || lv != v {
			keys = append(keys, k)
			w = max(w, len(k))
		}
	}
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	fmt.Fprintln(io.Out, "  env (what differs from this shell's):")
	for _, k := range keys {
		fmt.Fprintf(io.Out, "    %-*s  %s\n", w, safeText(k), safeText(m.value(k, env[k])))
	}
}

// describe prints one instance; m hides the secrets in its arguments.
func describe(io *IOStreams, p api.Process, now time.Time, m masker) {
	e := p.Pm2Env
	args, _ := json.Marshal(m.args(e.Args))
	nodeArgs, _ := json.Marshal(m.args(e.NodeArgs))
	exit := "-"
	if e.ExitCode != nil {
		exit = strconv.Itoa(*e.ExitCode)
	}
	kv := [][2]string{
		{"status", status(e, now)}, {"name", safeText(p.Name)}, {"namespace", safeText(e.Namespace)}, {"id", strconv.Itoa(p.PmID)},
		{"pid", strconv.Itoa(p.Pid)}, {"restarts", strconv.Itoa(e.RestartTime)}, {"unstable restarts", strconv.Itoa(e.UnstableRestarts)},
		{"uptime", uptime(e, now)}, {"last exit code", exit},
		{"script path", e.PmExecPath}, {"script args", string(args)}, {"interpreter", e.ExecInterpreter},
		{"interpreter args", string(nodeArgs)}, {"exec cwd", e.PmCwd}, {"exec mode", e.ExecMode},
		{"instance", strconv.Itoa(e.NodeAppInstance)}, {"out log path", e.PmOutLogPath}, {"error log path", e.PmErrLogPath},
		{"autorestart", strconv.FormatBool(e.Autorestart)}, {"kill signal", e.KillSignal},
		{"kill timeout", strconv.FormatInt(e.KillTimeout, 10) + " ms"}, {"max restarts", strconv.Itoa(e.MaxRestarts)},
		{"min uptime", strconv.FormatInt(e.MinUptime, 10) + " ms"}, {"cpu", strconv.FormatFloat(p.Monit.CPU, 'f', -1, 64) + "%"},
		{"memory", humanBytes(p.Monit.Memory)}, {"created at", time.UnixMilli(e.CreatedAt).Format(time.RFC3339)},
	}
	if e.PmLogPath != "" {
		kv = append(kv, [2]string{"combined log path", e.PmLogPath})
	}
	if d := e.LogDropped; d != nil {
		kv = append(kv, [2]string{"log lines dropped", fmt.Sprintf("%d out, %d err (%s)", d.Out, d.Err, d.Reason)})
	}
	if e.Procs > 1 {
		kv = append(kv, [2]string{"processes", strconv.Itoa(e.Procs) + " (cpu and memory are the whole tree's)"})
	}
	if e.MaxMemoryRestart > 0 {
		kv = append(kv, [2]string{"max memory restart", fmt.Sprintf("%s (%d replacements so far)", humanBytes(e.MaxMemoryRestart), e.MemoryRestarts)})
	}
	if e.CronRestart != "" {
		kv = append(kv, [2]string{"cron restart", fmt.Sprintf("%s (next %s)", e.CronRestart, time.UnixMilli(e.CronNext).Format(time.RFC3339))})
	}
	kv = append(kv, [2]string{"readiness", readiness(e)})
	if len(e.Listening) > 0 || len(e.Ports) > 0 {
		ports := fmt.Sprint(e.Listening)
		if e.Proxy {
			ports += " (relayed by tend's proxy)"
		}
		kv = append(kv, [2]string{"ports", ports}, [2]string{"drain timeout", strconv.FormatInt(e.DrainTimeout, 10) + " ms"})
	}
	w := 0
	for _, r := range kv {
		w = max(w, len(r[0]))
	}
	fmt.Fprintf(io.Out, "Describing process with id %d - name %s\n", p.PmID, safeText(p.Name))
	for _, r := range kv {
		fmt.Fprintf(io.Out, "  %-*s  %s\n", w, r[0], r[1])
	}
	describeExits(io, e.Exits)
	describeMetrics(io, e.AxmMonitor)
}

// readiness says when the instance counts as online.
func readiness(e api.Env) string {
	switch {
	case e.WaitReady:
		return fmt.Sprintf("when it sends 'ready' (wait_ready), at most %d ms", e.ListenTimeout)
	case e.ExecMode == string(config.ClusterMode):
		return fmt.Sprintf("when it listens, at most %d ms", e.ListenTimeout)
	}
	return "once started"
}

// describeExits prints the latest exits tend did not ask for, newest first.
func describeExits(io *IOStreams, exits []api.Exit) {
	if len(exits) == 0 {
		return
	}
	fmt.Fprintln(io.Out, "  recent exits (newest first):")
	for i := len(exits) - 1; i >= 0; i-- {
		x := exits[i]
		how := x.Why
		switch {
		case x.Code != nil:
			how = "exit code " + strconv.Itoa(*x.Code)
		case x.Signal != "":
			how = "signal " + x.Signal
		}
		fmt.Fprintf(io.Out, "    %s  %s after %s\n", time.UnixMilli(x.At).Format(time.RFC3339), how, time.Duration(x.UptimeMs)*time.Millisecond)
	}
}

// describeMetrics prints the custom metrics the app reported, by name.
func describeMetrics(io *IOStreams, axm map[string]any) {
	metrics := customMetrics(axm)
	if len(metrics) == 0 {
		return
	}
	w := 0
	for _, m := range metrics {
		w = max(w, len(m[0]))
	}
	fmt.Fprintln(io.Out, "  custom metrics:")
	for _, m := range metrics {
		fmt.Fprintf(io.Out, "    %-*s  %s\n", w, m[0], m[1])
	}
}

// customMetrics is jlist's axm_monitor as describe and monit show it: name and "value unit"
// pairs, by name, safe to print.
func customMetrics(axm map[string]any) [][2]string {
	var out [][2]string
	for _, n := range slices.Sorted(maps.Keys(axm)) {
		m, _ := axm[n].(map[string]any)
		v := fmt.Sprint(m["value"])
		if u, ok := m["unit"].(string); ok && u != "" {
			v += " " + u
		}
		out = append(out, [2]string{safeText(n), safeText(v)})
	}
	return out
}

// PidOptions are pid's.
type PidOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)

	Target string
	All    bool // no target: every process
}

// NewCmdPid builds `tend pid`.
func NewCmdPid(f *Factory, runF func(*PidOptions) error) *cobra.Command {
	opts := &PidOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:   "pid [name|id]",
		Short: "Print the pids of an app (or of every app)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target, opts.All = optionalTarget(args)
			if runF != nil {
				return runF(opts)
			}
			return pidRun(opts)
		},
	}
}

func pidRun(opts *PidOptions) error {
	sel, err := selected(opts.Client, opts.Target, opts.All)
	if err != nil {
		return err
	}
	for _, p := range sel {
		fmt.Fprintln(opts.IO.Out, strconv.Itoa(p.Pid))
	}
	return nil
}
