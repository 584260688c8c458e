package cli

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func startupEnv(t *testing.T, root bool) (*testEnv, *StartupOptions, *[]string) {
	t.Helper()
	e := newTestEnv(t)
	exe, _ := os.Executable()
	var ran []string
	opts := newStartupOptions(e.f)
	opts.Exe = func() (string, error) { return exe, nil }
	opts.Root = root
	opts.Run = func(name string, args ...string) error {
		ran = append(ran, name+" "+strings.Join(args, " "))
		return nil
	}
	return e, opts, &ran
}

// The unit tend startup prints passes systemd's own check, names this binary, the shell's PATH
// and $TEND_HOME, stops tend alone (KillMode=mixed) and does not fail without a dump.
func TestStartupUnit(t *testing.T) {
	for _, root := range []bool{true, false} {
		e, opts, _ := startupEnv(t, root)
		un, err := startupUnit(opts)
		if err != nil {
			t.Fatal(err)
		}
		exe, _ := opts.Exe()
		for _, want := range []string{"ExecStart=" + exe + " daemon\n", "ExecStartPost=-" + exe + " resurrect -s\n",
			`Environment="TEND_HOME=` + e.f.Home + `"`, `Environment="PATH=` + filepath.Dir(exe) + ":/usr/bin:/bin", "KillMode=mixed\n"} {
			if !strings.Contains(un.Text, want) {
				t.Errorf("root %v: the unit lacks %q:\n%s", root, want, un.Text)
			}
		}
		if root != strings.Contains(un.Text, "WantedBy=multi-user.target") || root != strings.HasPrefix(un.Path, "/etc/systemd/system/tend-") {
			t.Errorf("root %v: %s\n%s", root, un.Path, un.Text)
		}
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			continue
		}
		path := filepath.Join(t.TempDir(), "tend.service")
		os.WriteFile(path, []byte(un.Text), 0o644)
		if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil {
			t.Errorf("root %v: systemd-analyze verify: %v\n%s", root, err, out)
		}
	}
}

// --install writes the unit, reloads and enables it (and turns lingering on for a user unit);
// unstartup undoes it.
func TestStartupInstall(t *testing.T) {
	_, opts, ran := startupEnv(t, false)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	opts.Install = true
	if err := startupRun(opts); err != nil {
		t.Fatal(err)
	}
	un, _ := startupUnit(opts)
	if b, err := os.ReadFile(un.Path); err != nil || string(b) != un.Text {
		t.Fatalf("unit file: %v", err)
	}
	u, _ := user.Current()
	want := "systemctl --user daemon-reload; systemctl --user enable tend.service; loginctl enable-linger " + u.Username
	if got := strings.Join(*ran, "; "); got != want {
		t.Fatalf("ran %q, want %q", got, want)
	}
	*ran = nil
	opts.Install, opts.Remove = false, true
	if err := startupRun(opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(un.Path); !os.IsNotExist(err) {
		t.Fatalf("unit file still there: %v", err)
	}
	if got := strings.Join(*ran, "; "); got != "systemctl --user disable tend.service; systemctl --user daemon-reload" {
		t.Fatalf("ran %q", got)
	}
}

// tend config validate: every problem on stdout, exit 2 if one is not a warning.
func TestConfigValidate(t *testing.T) {
	e := newTestEnv(t)
	e.file(t, "ok.json", `{"apps": [{"name": "a", "script": "/bin/true", "autorestrat": true}]}`)
	if code := e.run("config", "validate", "ok.json"); code != 0 ||
		e.out.String() != "ok.json:1: warning: apps[0] \"a\": unknown key, ignored: autorestrat (did you mean autorestart?)\nok.json: 1 app, no problem\n" {
		t.Fatalf("exit %d, stdout %q", code, e.out)
	}
	e = newTestEnv(t)
	e.file(t, "bad.json", "{\"apps\": [\n {\"name\": \"a\"}\n]}")
	if code := e.run("config", "validate", "bad.json"); code != ExitUsage || !strings.HasSuffix(e.out.String(), "1 problem in bad.json\n") || e.c.Calls() != "" {
		t.Fatalf("exit %d, stdout %q", code, e.out)
	}
}
