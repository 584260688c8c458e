package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/test/e2e"
)

// tmuxSession drives a terminal in its own tmux server.
type tmuxSession struct {
	t      *testing.T
	server string
}

func (s *tmuxSession) run(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", s.server}, args...)...).CombinedOutput()
	return string(out), err
}

func (s *tmuxSession) screen() string {
	out, _ := s.run("capture-pane", "-p", "-t", "monit")
	return out
}

// waitScreen polls the pane until cond holds.
func (s *tmuxSession) waitScreen(what string, cond func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		sc := s.screen()
		if cond(sc) {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %s; it shows:\n%s", what, sc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tend monit in a real terminal (tmux): the list, keys that act on the selected app, a resize
// to 20×5, and q leaves the terminal as it was (cooked mode, the main screen).
func TestMonitInTmux(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "alpha", "-s")
	h.OK("start", e2e.AppBin, "--name", "beta", "-s", "--", "-flood", "3", "-stderr", "2")
	h.WaitStatus("beta", "online")
	after := filepath.Join(t.TempDir(), "after")
	s := &tmuxSession{t: t, server: "tend-" + strings.NewReplacer("/", "-", " ", "-").Replace(h.Mark)}
	t.Cleanup(func() { s.run("kill-server") })
	script := h.Bin + " monit; stty -a > " + after + "; echo monit-ended; sleep 30"
	if out, err := s.run("new-session", "-d", "-s", "monit", "-x", "100", "-y", "30",
		"-e", "TEND_HOME="+h.Home, "-e", "TERM=xterm-256color", "-e", "TEND_TEST_MARK="+h.Mark, "sh", "-c", script); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	s.waitScreen("the list", func(sc string) bool {
		return strings.Contains(sc, "tend monit") && strings.Contains(sc, "alpha") && strings.Contains(sc, "beta")
	})
	// Select beta: its details and its log lines show, and r restarts it.
	s.run("send-keys", "-t", "monit", "j")
	s.waitScreen("beta's details and logs", func(sc string) bool {
		return strings.Contains(sc, "beta[1] online") && strings.Contains(sc, "line 0000002") && strings.Contains(sc, "err 1")
	})
	s.run("send-keys", "-t", "monit", "r")
	h.WaitFor("beta", 10*time.Second, "restarted from monit", func(p proc) bool { return p.Pm2Env.RestartTime == 1 })
	if a, _ := h.Get("alpha"); a.Pm2Env.RestartTime != 0 {
		t.Error("r restarted alpha, which was not selected")
	}
	s.waitScreen("the outcome", func(sc string) bool { return strings.Contains(sc, "restart beta: done") })
	// + scales the selected app.
	s.run("send-keys", "-t", "monit", "+")
	h.WaitOnline("beta", 2)
	// An app that floods its log while it is shown: the screen keeps answering keys.
	h.OK("start", e2e.AppBin, "--name", "gamma", "-s", "--", "-flood", "3000000")
	s.waitScreen("gamma in the list", func(sc string) bool { return strings.Contains(sc, "gamma") })
	s.run("send-keys", "-t", "monit", "j", "j", "j")
	s.waitScreen("gamma's lines", func(sc string) bool { return strings.Contains(sc, "gamma[") && strings.Contains(sc, "  line ") })
	s.run("send-keys", "-t", "monit", "k")
	s.waitScreen("the selection moved during the flood", func(sc string) bool { return strings.Contains(sc, "> ") && !strings.Contains(sc, "gamma[") })
	// Resized to 20×5: no line wider than the terminal.
	s.run("resize-window", "-t", "monit", "-x", "20", "-y", "5")
	sc := s.waitScreen("the small screen", func(sc string) bool { return strings.Contains(sc, "tend monit") })
	for _, l := range strings.Split(strings.TrimRight(sc, "\n"), "\n") {
		if len([]rune(l)) > 20 {
			t.Errorf("a line wider than 20 columns: %q", l)
		}
	}
	s.run("resize-window", "-t", "monit", "-x", "100", "-y", "30")
	s.run("send-keys", "-t", "monit", "q")
	s.waitScreen("the shell after monit", func(sc string) bool { return strings.Contains(sc, "monit-ended") })
	b, err := os.ReadFile(after)
	if err != nil {
		t.Fatal(err)
	}
	if st := string(b); strings.Contains(st, "-icanon") || strings.Contains(st, "-echo ") {
		t.Errorf("the terminal is left in raw mode: %s", st)
	}
	if sc := s.screen(); strings.Contains(sc, "tend monit ·") {
		t.Errorf("the screen still shows monit after it quit (the alternate screen was not left):\n%s", sc)
	}
}

// Without a terminal (TERM=dumb, output to a pipe), monit prints the plain table until it is
// interrupted, and exits 0.
func TestMonitDumbTerminal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "plain", "-s")
	cmd := exec.Command(h.Bin, "monit")
	cmd.Env = append(h.Env, "TERM=dumb")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "│ plain ") {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("monit's output ended: %v; %q", err, got.String())
		}
		got.Write(buf[:n])
	}
	if strings.Contains(got.String(), "\x1b[") {
		t.Errorf("escape sequences on a dumb terminal: %q", got.String())
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("monit after Ctrl-C: %v", err)
	}
}
