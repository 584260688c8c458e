package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
)

func fetchList(env *Env) ([]api.Process, error) {
	var procs []api.Process
	if err := env.Client().Do("GET", api.PathJlist, nil, &procs); err != nil {
		return nil, err
	}
	return procs, nil
}

// selectProcs applies a PM2 selector on the client side: all, an id, a name or a namespace.
func selectProcs(procs []api.Process, target string) ([]api.Process, error) {
	if target == "all" {
		return procs, nil
	}
	var out []api.Process
	for _, p := range procs {
		if strconv.Itoa(p.PmID) == target || p.Name == target {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		for _, p := range procs {
			if p.Pm2Env.Namespace == target {
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		if config.IsID(target) {
			return nil, notFound{fmt.Sprintf("no process with id %s (see tend ls)", target)}
		}
		return nil, notFound{fmt.Sprintf("no app named %q (see tend ls)", target)}
	}
	return out, nil
}

// selected fetches the list and applies the selector in args (every process when there is none).
func selected(env *Env, args []string) ([]api.Process, error) {
	procs, err := fetchList(env)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return procs, nil
	}
	return selectProcs(procs, args[0])
}

func newJlistCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "jlist",
		Short: "Print every process as JSON, in PM2's shape",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The daemon's bytes pass through undecoded: this is the fast path.
			body, err := env.Client().Raw("GET", api.PathJlist, nil)
			if err != nil {
				return err
			}
			_, err = env.IO.Out.Write(body)
			return err
		},
	}
}

func newListCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list", "l", "ps", "status"},
		Short:   "Show the process table",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env.Silent = false
			return printTable(env)
		},
	}
}

func printTable(env *Env) error {
	if env.Silent {
		return nil
	}
	procs, err := fetchList(env)
	if err != nil {
		return err
	}
	renderTable(env.IO, procs, time.Now())
	return nil
}

const (
	ansiReset = "\x1b[0m"
	ansiGreen = "\x1b[32m"
	ansiRed   = "\x1b[31m"
	ansiGrey  = "\x1b[90m"
	ansiYell  = "\x1b[33m"
	ansiBold  = "\x1b[1m"
)

func renderTable(io IO, procs []api.Process, now time.Time) {
	header := []string{"id", "name", "mode", "pid", "status", "↺", "uptime", "cpu", "mem"}
	rows := [][]string{}
	colors := []string{}
	for _, p := range procs {
		e := p.Pm2Env
		mode := strings.TrimSuffix(e.ExecMode, "_mode")
		uptime := "0"
		if e.Status == "online" && e.PmUptime > 0 {
			uptime = humanDuration(now.Sub(time.UnixMilli(e.PmUptime)))
		}
		pid := strconv.Itoa(p.Pid)
		if p.Pid == 0 {
			pid = "0"
		}
		rows = append(rows, []string{
			strconv.Itoa(p.PmID), p.Name, mode, pid, e.Status, strconv.Itoa(e.RestartTime), uptime,
			strconv.FormatFloat(p.Monit.CPU, 'f', -1, 64) + "%", humanBytes(p.Monit.Memory),
		})
		switch e.Status {
		case "online":
			colors = append(colors, ansiGreen)
		case "errored":
			colors = append(colors, ansiRed)
		case "stopped":
			colors = append(colors, ansiGrey)
		default:
			colors = append(colors, ansiYell)
		}
	}
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	line := func(l, m, r string) string {
		var b strings.Builder
		b.WriteString(l)
		for i, w := range widths {
			b.WriteString(strings.Repeat("─", w+2))
			if i < len(widths)-1 {
				b.WriteString(m)
			}
		}
		b.WriteString(r)
		return b.String()
	}
	row := func(cells []string, color string, statusCol int) string {
		var b strings.Builder
		b.WriteString("│")
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if io.OutIsTTY && color != "" && i == statusCol {
				c = color + c + ansiReset
			}
			b.WriteString(" " + c + pad + " │")
		}
		return b.String()
	}
	fmt.Fprintln(io.Out, line("┌", "┬", "┐"))
	fmt.Fprintln(io.Out, row(header, "", -1))
	fmt.Fprintln(io.Out, line("├", "┼", "┤"))
	for i, r := range rows {
		fmt.Fprintln(io.Out, row(r, colors[i], 4))
	}
	fmt.Fprintln(io.Out, line("└", "┴", "┘"))
}

// humanDuration prints PM2's uptime style: 12s, 5m, 3h, 2D.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "D"
}

// humanBytes prints PM2's memory style: 0b, 512kb, 40.1mb, 1.2gb.
func humanBytes(n int64) string {
	f := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + "b"
	case n < 1<<20:
		return strconv.FormatFloat(f/1024, 'f', 1, 64) + "kb"
	case n < 1<<30:
		return strconv.FormatFloat(f/(1<<20), 'f', 1, 64) + "mb"
	}
	return strconv.FormatFloat(f/(1<<30), 'f', 1, 64) + "gb"
}

func newDescribeCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "describe <name|id>",
		Aliases: []string{"desc", "info", "show"},
		Short:   "Show everything about an app's instances",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := selected(env, args)
			if err != nil {
				return err
			}
			for _, p := range sel {
				describe(env.IO, p, time.Now())
			}
			return nil
		},
	}
}

func describe(io IO, p api.Process, now time.Time) {
	e := p.Pm2Env
	uptime := "0"
	if e.Status == "online" && e.PmUptime > 0 {
		uptime = humanDuration(now.Sub(time.UnixMilli(e.PmUptime)))
	}
	args, _ := json.Marshal(e.Args)
	nodeArgs, _ := json.Marshal(e.NodeArgs)
	exit := "-"
	if e.ExitCode != nil {
		exit = strconv.Itoa(*e.ExitCode)
	}
	kv := [][2]string{
		{"status", e.Status}, {"name", p.Name}, {"namespace", e.Namespace}, {"id", strconv.Itoa(p.PmID)},
		{"pid", strconv.Itoa(p.Pid)}, {"restarts", strconv.Itoa(e.RestartTime)}, {"unstable restarts", strconv.Itoa(e.UnstableRestarts)},
		{"uptime", uptime}, {"last exit code", exit},
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
	fmt.Fprintf(io.Out, "Describing process with id %d - name %s\n", p.PmID, p.Name)
	for _, r := range kv {
		fmt.Fprintf(io.Out, "  %-*s  %s\n", w, r[0], r[1])
	}
}
