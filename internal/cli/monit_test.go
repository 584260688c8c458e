package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tend-sh/tend/internal/api"
)

func manyProcs(n int) []api.Process {
	out := make([]api.Process, n)
	for i := range out {
		out[i] = api.Process{Pid: 1000 + i, Name: fmt.Sprintf("app%d", i), PmID: i}
		out[i].Pm2Env.Status, out[i].Pm2Env.ExecMode = "online", "fork_mode"
	}
	return out
}

// The screen fits any size, 20×5 included, and a long list scrolls to keep the selection in view.
func TestMonitRender(t *testing.T) {
	s := &monitState{now: time.Unix(0, 0)}
	s.setProcs(manyProcs(500))
	s.logs = []logLine{{"hello", false}, {"oops", true}}
	for _, size := range [][2]int{{20, 5}, {80, 24}, {200, 60}, {1, 1}} {
		lines := s.render(size[0], size[1])
		if len(lines) != size[1] {
			t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
		}
		for _, l := range lines {
			if utf8.RuneCountInString(l) > size[0] {
				t.Errorf("%dx%d: a line of %d columns: %q", size[0], size[1], utf8.RuneCountInString(l), l)
			}
		}
	}
	s.move(450)
	lines := s.render(100, 30)
	if !containsLine(lines, "> 450 ") || !strings.Contains(strings.Join(lines, "\n"), "of 500)") {
		t.Errorf("after moving to 450, the selection is not shown:\n%s", strings.Join(lines, "\n"))
	}
	if !containsLine(lines, "app450[450] online") || !containsLine(lines, "  oops") {
		t.Errorf("details or logs missing:\n%s", strings.Join(lines, "\n"))
	}
	s.move(1000)
	if p, _ := s.selected(); p.PmID != 499 {
		t.Errorf("moving past the end: %d", p.PmID)
	}
	// A new list keeps the selection on the same process.
	procs := manyProcs(500)[100:]
	s.setProcs(procs)
	if p, _ := s.selected(); p.PmID != 499 {
		t.Errorf("after a new list the selection is %d, want 499", p.PmID)
	}
	s.setProcs(nil)
	if _, ok := s.selected(); ok || len(s.render(40, 10)) != 10 {
		t.Error("an empty list")
	}
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// Where there is no terminal to draw on, monit prints the table until interrupted.
func TestMonitPlain(t *testing.T) {
	e := newTestEnv(t)
	cmd := NewCmdMonit(e.f, func(o *MonitOptions) error {
		c, _ := o.Client()
		procs, _ := c.Rows()
		renderTable(o.IO, procs, time.Now())
		return nil
	})
	if err := parse(t, cmd); err != nil || !strings.Contains(e.out.String(), "│ api ") {
		t.Errorf("%v %q", err, e.out)
	}
}

func TestSplitKeys(t *testing.T) {
	got := splitKeys([]byte("jj\x1b[Ar\x1b[6~q"))
	want := []string{"j", "j", "\x1b[A", "r", "\x1b[6~", "q"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%q, want %q", got, want)
	}
}
