package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

// ListOptions are ls's.
type ListOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Now    func() time.Time // for the uptime column

	Mini bool   // -m: PM2's mini list, a block of lines per process
	Sort string // --sort field[:asc|desc]
}

// NewCmdList builds `tend ls`.
func NewCmdList(f *Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IO, Client: f.Client, Now: time.Now}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list", "l", "ps", "status"},
		Short:   "Show the process table",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := sortKey(opts.Sort); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return listRun(opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Mini, "mini-list", "m", false, "a block of lines per process (PM2's ls -m), for scripts")
	cmd.Flags().StringVar(&opts.Sort, "sort", "", "order by name, id, pid, namespace, memory, cpu, status or uptime, with :asc or :desc (default: id)")
	return cmd
}

// listRun prints the table, even with --silent.
func listRun(opts *ListOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	procs, err := c.Rows()
	if err != nil {
		return err
	}
	sortProcs(procs, opts.Sort)
	if opts.Mini {
		miniList(opts.IO, procs, opts.Now())
		return nil
	}
	renderTable(opts.IO, procs, opts.Now())
	return nil
}

// JlistOptions are jlist's.
type JlistOptions struct {
	IO          *IOStreams
	Client      func() (client.API, error)
	MaskSecrets bool
	Pretty      bool // prettylist: printed as Node's util.inspect prints it
}

// NewCmdJlist builds `tend jlist`.
func NewCmdJlist(f *Factory, runF func(*JlistOptions) error) *cobra.Command {
	return newCmdJlist(f, "jlist", "Print every process as JSON, in PM2's shape", false, runF)
}

// NewCmdPrettylist builds `tend prettylist`: jlist as PM2 prints it, through Node's util.inspect.
func NewCmdPrettylist(f *Factory, runF func(*JlistOptions) error) *cobra.Command {
	return newCmdJlist(f, "prettylist", "Print every process as jlist does, in the form PM2 prints it (Node's util.inspect)", true, runF)
}

func newCmdJlist(f *Factory, use, short string, pretty bool, runF func(*JlistOptions) error) *cobra.Command {
	opts := &JlistOptions{IO: f.IO, Client: f.Client, Pretty: pretty}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return jlistRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.MaskSecrets, "mask-secrets", false, "mask the values of TOKEN, SECRET, PASSWORD, KEY… variables (PM2's shape keeps them)")
	return cmd
}

// jlistRun passes the daemon's bytes through undecoded: this is the fast path.
func jlistRun(opts *JlistOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	body, err := c.JlistRaw()
	if err != nil {
		return err
	}
	if opts.MaskSecrets {
		if body, err = maskJlist(body, secretWords(c)); err != nil {
			return err
		}
	}
	if opts.Pretty {
		return writeInspect(opts.IO.Out, body)
	}
	_, err = opts.IO.Out.Write(body)
	return err
}

// maskJlist masks secret values in a jlist: in pm2_env.env and their copies at pm2_env's top.
func maskJlist(body []byte, words []string) ([]byte, error) {
	var procs []map[string]json.RawMessage
	if err := json.Unmarshal(body, &procs); err != nil {
		return nil, err
	}
	for _, p := range procs {
		var env map[string]any
		if err := json.Unmarshal(p["pm2_env"], &env); err != nil {
			continue
		}
		mask := func(m map[string]any) {
			for k, v := range m {
				if s, ok := v.(string); ok {
					m[k] = config.Masked(k, s, words)
				}
			}
		}
		if inner, ok := env["env"].(map[string]any); ok {
			for k := range inner {
				if s, ok := env[k].(string); ok {
					env[k] = config.Masked(k, s, words)
				}
			}
			mask(inner)
		}
		p["pm2_env"], _ = json.Marshal(env)
	}
	out, err := json.Marshal(procs)
	return append(out, '\n'), err
}

// printTable prints the process table after an action, unless silent.
func printTable(io *IOStreams, c client.API, silent bool) error {
	if silent {
		return nil
	}
	procs, err := c.Rows()
	if err != nil {
		return err
	}
	renderTable(io, procs, time.Now())
	return nil
}

const (
	ansiReset = "\x1b[0m"
	ansiGreen = "\x1b[32m"
	ansiRed   = "\x1b[31m"
	ansiGrey  = "\x1b[90m"
	ansiYell  = "\x1b[33m"
)

// rowHeader and rowCells are a process row as ls and monit show it, its status in column
// rowStatusCol, coloured by statusColor.
var rowHeader = []string{"id", "name", "mode", "pid", "status", "↺", "uptime", "cpu", "mem"}

const rowStatusCol = 4

func rowCells(p api.Process, now time.Time) []string {
	e := p.Pm2Env
	mode := strings.TrimSuffix(e.ExecMode, "_mode")
	return []string{
		strconv.Itoa(p.PmID), safeText(p.Name), mode, strconv.Itoa(p.Pid), status(e, now), strconv.Itoa(e.RestartTime), uptime(e, now),
		strconv.FormatFloat(p.Monit.CPU, 'f', -1, 64) + "%", humanBytes(p.Monit.Memory),
	}
}

// statusColor is the ANSI colour of a status.
func statusColor(s string) string {
	switch s {
	case "online":
		return ansiGreen
	case "errored":
		return ansiRed
	case "stopped":
		return ansiGrey
	}
	return ansiYell
}

func renderTable(io *IOStreams, procs []api.Process, now time.Time) {
	header := rowHeader
	rows := [][]string{}
	colors := []string{}
	for _, p := range procs {
		rows = append(rows, rowCells(p, now))
		colors = append(colors, statusColor(p.Pm2Env.Status))
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
			if io.ColorEnabled() && color != "" && i == statusCol {
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
		fmt.Fprintln(io.Out, row(r, colors[i], rowStatusCol))
	}
	fmt.Fprintln(io.Out, line("└", "┴", "┘"))
}

// safeText is s as a terminal may show it: control characters (ESC, CR…) and bytes that are not
// UTF-8 become U+FFFD. tend refuses such names; a registry of an older daemon may hold one.
func safeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// status is the status as ls shows it: an errored instance that is tried again later says when.
func status(e api.Env, now time.Time) string {
	if e.Status == "errored" && e.RetryAt > 0 {
		return "errored, retry in " + humanDuration(max(time.UnixMilli(e.RetryAt).Sub(now), 0))
	}
	return e.Status
}

// uptime is an online process's uptime in PM2's style, or "0".
func uptime(e api.Env, now time.Time) string {
	if e.Status == "online" && e.PmUptime > 0 {
		return humanDuration(now.Sub(time.UnixMilli(e.PmUptime)))
	}
	return "0"
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
