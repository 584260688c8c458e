package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/config"
)

func TestExport(t *testing.T) {
	e := newTestEnv(t)
	s := config.Defaults()
	s.Name, s.Script, s.Cwd, s.InterpreterLabel = "api", "/bin/sleep", "/", "none"
	e.c.specs = []config.AppSpec{s}
	if code := e.run("export", "compose"); code != 0 || !strings.Contains(e.out.String(), "services:\n  api:\n") || e.c.Calls() != "Specs" {
		t.Fatalf("export compose: exit %d, calls %q, out:\n%s", code, e.c.Calls(), e.out)
	}
	e = newTestEnv(t)
	e.c.specs = []config.AppSpec{s, s}
	e.c.specs[1].Name = "two"
	out := filepath.Join(e.f.Cwd, "units")
	if code := e.run("export", "systemd", "--out", out, "--only", "two"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	if got := e.out.String(); got != filepath.Join(out, "two.service")+"\n" {
		t.Errorf("--out printed %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(out, "two.service")); err != nil || !strings.Contains(string(b), "ExecStart=/bin/sleep") {
		t.Errorf("two.service: %v %s", err, b)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "helm"}, "tend: unknown export format \"helm\"; the formats are systemd, kubernetes, compose, nomad\n"},
		{[]string{"export", "nomad", "--only", "ghost"}, "tend: no app to export (see tend ls, or --only)\n"},
	} {
		e := newTestEnv(t)
		e.c.specs = []config.AppSpec{s}
		if code := e.run(c.args...); code != ExitUsage || e.errOut.String() != c.want {
			t.Errorf("tend %s: exit %d, stderr %q", strings.Join(c.args, " "), code, e.errOut)
		}
	}
	e = newTestEnv(t)
	e.c.running = false
	if code := e.run("export", "kubernetes"); code != ExitUsage || !strings.Contains(e.errOut.String(), "no tend daemon runs") {
		t.Errorf("no daemon: exit %d, %q", code, e.errOut)
	}
}
