package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSave(t *testing.T) {
	e := newTestEnv(t)
	if code := e.run("save"); code != 0 || e.out.String() != "saved 3 instances in /h/dump.pm2 (the one before is /h/dump.pm2.bak)\n" || e.c.Calls() != "Save false" {
		t.Fatalf("exit %d, stdout %q, calls %q", code, e.out, e.c.Calls())
	}
	e = newTestEnv(t)
	if code := e.run("dump", "--force"); code != 0 || e.c.Calls() != "Save true" {
		t.Fatalf("dump --force: exit %d, calls %q", code, e.c.Calls())
	}
}

// resurrect reads a dump (PM2's here, from test/testdata) and sends its apps, their instances
// and statuses; with no file it reads $TEND_HOME's dump, then its .bak.
func TestResurrect(t *testing.T) {
	pm2, err := os.ReadFile("../../test/testdata/pm2-7.0.4-dump.pm2")
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t)
	path := e.file(t, "dump.pm2", string(pm2))
	if code := e.run("resurrect", path, "-s"); code != 0 || e.c.Calls() != "Resurrect web,nap; List" {
		t.Fatalf("exit %d, calls %q, %s", code, e.c.Calls(), e.errOut)
	}
	reg := e.c.revived[0]
	if web := reg.Apps[0]; len(web.Instances) != 2 || web.Instances[0].ID != -1 || web.Spec.Instances != 2 || web.Spec.Interpreter == "" {
		t.Errorf("web: %+v", web)
	}
	if nap := reg.Apps[1]; nap.Instances[0].Status != "stopped" {
		t.Errorf("nap: %+v", nap.Instances)
	}

	// The home's dump is cut short: its .bak is used, and that is said.
	e = newTestEnv(t)
	e.f.Home = t.TempDir()
	os.WriteFile(filepath.Join(e.f.Home, "dump.pm2"), pm2[:100], 0o600)
	os.WriteFile(filepath.Join(e.f.Home, "dump.pm2.bak"), pm2, 0o600)
	if code := e.run("resurrect", "-s"); code != 0 || e.c.Calls() != "Resurrect web,nap; List" || !strings.Contains(e.errOut.String(), "using "+filepath.Join(e.f.Home, "dump.pm2.bak")) {
		t.Fatalf("bak: exit %d, calls %q, %q", code, e.c.Calls(), e.errOut)
	}

	// No dump at all, and a file that is not one: one line each, nothing sent.
	e = newTestEnv(t)
	e.f.Home = t.TempDir()
	if code := e.run("resurrect"); code != ExitUsage || e.c.Calls() != "" || !strings.Contains(e.errOut.String(), "no dump at ") {
		t.Fatalf("none: exit %d, calls %q, %q", code, e.c.Calls(), e.errOut)
	}
	e = newTestEnv(t)
	bad := e.file(t, "x.pm2", "[{\"name\": ")
	if code := e.run("resurrect", bad); code != ExitUsage || e.c.Calls() != "" || !strings.Contains(e.errOut.String(), "cannot be read (cut short, or not a dump)") {
		t.Fatalf("bad: exit %d, calls %q, %q", code, e.c.Calls(), e.errOut)
	}
}
