package supervisor

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/config"
)

// An app with uid runs as that user, with its HOME and USER; a folder the user cannot enter
// is refused before anything starts. (A root daemon switches users; these tests need root.)
func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	f := newFixture(t, false)
	if err := f.sup.Start(spec("api", func(s *config.AppSpec) { s.User, s.Script = "nobody", "/bin/sleep" })); err != nil {
		t.Fatal(err)
	}
	p := f.next()
	uid, _ := strconv.ParseUint(nobody.Uid, 10, 32)
	if p.Cmd.Cred == nil || p.Cmd.Cred.Uid != uint32(uid) {
		t.Fatalf("cred %+v, want uid %d", p.Cmd.Cred, uid)
	}
	if p.Env("USER") != "nobody" || p.Env("HOME") != nobody.HomeDir || p.Env("LOGNAME") != "nobody" {
		t.Errorf("env USER=%q HOME=%q", p.Env("USER"), p.Env("HOME"))
	}

	closed := t.TempDir() // 0700, root's
	err = f.sup.Start(spec("shut", func(s *config.AppSpec) { s.User, s.Cwd, s.Script = "nobody", closed, "/bin/sleep" }))
	if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "user nobody cannot enter "+filepath.Dir(closed)+" (drwx------ root)") {
		t.Errorf("a folder nobody cannot enter: %v", err)
	}
	if _, err := f.sup.Select("shut"); err == nil {
		t.Error("the refused app was added")
	}
	script := filepath.Join(t.TempDir(), "app.sh")
	os.WriteFile(script, []byte("echo\n"), 0o700)
	os.Chmod(filepath.Dir(script), 0o755)
	err = f.sup.Start(spec("unreadable", func(s *config.AppSpec) { s.User, s.Script, s.Interpreter = "nobody", script, "/bin/bash" }))
	if err == nil || !strings.Contains(err.Error(), "user nobody cannot read "+script) {
		t.Errorf("a script nobody cannot read: %v", err)
	}
}
