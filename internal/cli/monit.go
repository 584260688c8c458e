package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
)

// MonitOptions are `tend monit`'s.
type MonitOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Now    func() time.Time
	// Every is how often the list is asked for; logs are read four times as often.
	Every time.Duration
}

// NewCmdMonit builds `tend monit` (PM2's dashboard and dash too): the list with live figures,
// the selected app's details and logs, and keys to act on it. It draws with x/term: the charm
// stack (bubbletea v2 and lipgloss v2) would add 0.45 ms of package init to every CLI call.
func NewCmdMonit(f *Factory, runF func(*MonitOptions) error) *cobra.Command {
	o := &MonitOptions{IO: f.IO, Client: f.Client, Now: time.Now, Every: time.Second}
	return &cobra.Command{
		Use:     "monit",
		Aliases: []string{"dashboard", "dash"},
		Short:   "Watch the apps live: figures, the selected app's details and logs; keys restart, reload, stop or scale it",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return monitRun(o)
		},
	}
}

// monitKeys is the help line.
const monitKeys = "↑↓ select · r restart · l reload · s stop · + - scale · q quit"

// monitState is what the screen shows, drawn by render whatever the terminal's size.
type monitState struct {
	procs []api.Process
	sel   int // the selected row
	top   int // the first row shown
	logs  []logLine
	msg   string // the last action's outcome, or an error
	now   time.Time
	color bool
}

type logLine struct {
	text  string
	isErr bool
}

// selected is the selected process, if any.
func (s *monitState) selected() (api.Process, bool) {
	if s.sel < 0 || s.sel >= len(s.procs) {
		return api.Process{}, false
	}
	return s.procs[s.sel], true
}

// move moves the selection by d rows, within the list.
func (s *monitState) move(d int) {
	s.sel = min(max(s.sel+d, 0), max(len(s.procs)-1, 0))
}

// setProcs takes a new list, keeping the selection on the same pm_id when it is still there.
func (s *monitState) setProcs(procs []api.Process) {
	id := -1
	if p, ok := s.selected(); ok {
		id = p.PmID
	}
	s.procs = procs
	if i := slices.IndexFunc(procs, func(p api.Process) bool { return p.PmID == id }); i >= 0 {
		s.sel = i
	}
	s.move(0)
}

// render draws the screen as w×h lines: the help line, the list (scrolled to keep the
// selection in view), the selected app's details and its latest log lines, and a status line.
func (s *monitState) render(w, h int) []string {
	w, h = max(w, 1), max(h, 1)
	var out []string
	add := func(line string, style string) {
		if len(out) < h {
			out = append(out, clip(line, w, style, s.color))
		}
	}
	add("tend monit · "+monitKeys, "")
	// The list gets up to half of what is left, at least its header and one row.
	rest := h - 2 // help line and status line
	listRows := min(len(s.procs), max(1, rest/2-1))
	if rest < 3 {
		listRows = max(0, rest-1)
	}
	if s.sel < s.top {
		s.top = s.sel
	}
	if s.sel >= s.top+listRows {
		s.top = s.sel - listRows + 1
	}
	s.top = min(max(s.top, 0), max(len(s.procs)-listRows, 0))
	visible := s.procs[s.top : s.top+listRows]
	widths := make([]int, len(rowHeader))
	cells := make([][]string, len(visible))
	for i, hd := range rowHeader {
		widths[i] = utf8.RuneCountInString(hd)
	}
	for i, p := range visible {
		cells[i] = rowCells(p, s.now)
		for j, c := range cells[i] {
			widths[j] = max(widths[j], utf8.RuneCountInString(c))
		}
	}
	join := func(cs []string) string {
		var b strings.Builder
		for j, c := range cs {
			b.WriteString(c + strings.Repeat(" ", widths[j]-utf8.RuneCountInString(c)+2))
		}
		return b.String()
	}
	if rest >= 2 {
		more := ""
		if len(s.procs) > listRows {
			more = fmt.Sprintf("  (%d-%d of %d)", s.top+1, s.top+listRows, len(s.procs))
		}
		add("  "+join(rowHeader)+more, ansiBold)
	}
	for i, p := range visible {
		mark, style := "  ", statusColor(p.Pm2Env.Status)
		if s.top+i == s.sel {
			mark, style = "> ", ansiReverse
		}
		add(mark+join(cells[i]), style)
	}
	if p, ok := s.selected(); ok && len(out) < h-1 {
		add(details(p, s.now), "")
		for _, m := range metricsLine(p) {
			if len(out) < h-1 {
				add(m, "")
			}
		}
	}
	room := max(h-1-len(out), 0)
	first := max(len(s.logs)-room, 0)
	for _, l := range s.logs[first:] {
		style := ""
		if l.isErr {
			style = ansiRed
		}
		add("  "+safeText(l.text), style)
	}
	for len(out) < h-1 {
		out = append(out, "")
	}
	add(s.msg, ansiGrey)
	return out
}

// details is the selected instance's line of figures.
func details(p api.Process, now time.Time) string {
	e := p.Pm2Env
	d := fmt.Sprintf("%s[%d] %s · pid %d · cpu %s%% · mem %s", safeText(p.Name), p.PmID, e.Status, p.Pid,
		strconv.FormatFloat(p.Monit.CPU, 'f', -1, 64), humanBytes(p.Monit.Memory))
	if e.Procs > 1 {
		d += fmt.Sprintf(" (%d processes)", e.Procs)
	}
	d += fmt.Sprintf(" · ↺ %d · up %s", e.RestartTime, uptime(e, now))
	if e.MaxMemoryRestart > 0 {
		d += fmt.Sprintf(" · limit %s (%d hit)", humanBytes(e.MaxMemoryRestart), e.MemoryRestarts)
	}
	return d
}

// metricsLine is the selected instance's custom metrics on one line ("" when none).
func metricsLine(p api.Process) []string {
	var parts []string
	for _, m := range customMetrics(p.Pm2Env.AxmMonitor) {
		parts = append(parts, m[0]+": "+m[1])
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{"metrics · " + strings.Join(parts, " · ")}
}

const (
	ansiBold    = "\x1b[1m"
	ansiReverse = "\x1b[7m"
)

// clip cuts line to w columns (counting runes) and styles it when color is on.
func clip(line string, w int, style string, color bool) string {
	if utf8.RuneCountInString(line) > w {
		line = string([]rune(line)[:w])
	}
	if color && style != "" && line != "" {
		return style + line + ansiReset
	}
	return line
}
