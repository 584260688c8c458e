package config

import (
	"errors"
	"testing"
	"time"
)

// Every config format, whatever its bytes: apps, or an error that says what is invalid; never a
// panic. (ecosystem.config.js runs in node; its JSON result is what this reads.)
func FuzzParseApps(f *testing.F) {
	for _, s := range []string{
		`{"apps":[{"name":"api","script":"app.js","instances":"max","env":{"PORT":3000}}]}`,
		`[{"script":"a.py","cron_restart":"*/5 * * * *","watch":["src"],"max_memory_restart":"300M"}]`,
		"apps:\n  - name: web\n    script: web.js\n    env_production:\n      NODE_ENV: production\n",
		`{"apps":[{"script":"x","kill_timeout":"1e400","instances":-99999999999}]}`, `{`, `null`, "- - -",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, yaml bool) {
		name := "fuzz.json"
		if yaml {
			name = "fuzz.yaml"
		}
		specs, err := ParseApps(data, name)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("an error that is not ErrInvalid: %v", err)
		}
		for _, s := range specs {
			_ = s.Validate()
		}
	})
}

// A Procfile: apps or an error, never a panic; each app has a name and a command.
func FuzzProcfile(f *testing.F) {
	f.Add([]byte("web: node server.js\nworker: python3 w.py\n# comment\n"))
	f.Add([]byte(":\n::\nweb:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ParseProcfile(data, "Procfile")
		for _, s := range specs {
			if err == nil && (s.Name == "" || s.Script == "") {
				t.Errorf("an app without a name or a command: %+v", s)
			}
		}
	})
}

// A .env file: variables or an error, never a panic; every key it yields is a valid name.
func FuzzDotenv(f *testing.F) {
	for _, s := range []string{"A=1\nexport B='two'\nC=\"multi\nline\"\n# x\n", "=x", "A=\"unterminated", "A B=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := map[string]string{}
		if err := parseDotenv(s, out); err == nil {
			for k := range out {
				if !validEnvKey(k) {
					t.Errorf("key %q", k)
				}
			}
		}
	})
}

// Values from flags and configs: durations, signals, instances, listen addresses, sizes,
// cron and rotation settings. Each parses or errs, never panics, and what parses is sane.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"10s", "1500", "SIGTERM", "9", "max", "-1", "2.7", "127.0.0.1:8000", "[::1]:80", "300M", "1G",
		"*/5 * * * * *", "daily", "0", "-9223372036854775808ms", "1e309", "99999999999999999999h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d < 0 {
			t.Errorf("ParseDuration(%q) = %v", s, d)
		}
		_, _ = ParseSignal(s)
		if n, _, err := ParseInstances(s); err == nil && (n < 0 || n > MaxInstances) {
			t.Errorf("ParseInstances(%q) = %d", s, n)
		}
		if l, err := ParseListen(s); err == nil && (l.Port < 0 || l.Port > 65535) {
			t.Errorf("ParseListen(%q) = %+v", s, l)
		}
		if b, err := ParseBytes(s); err == nil && b < 0 {
			t.Errorf("ParseBytes(%q) = %d", s, b)
		}
		_ = CheckListenAddr(s)
		_, _ = RotateInterval(s)
		var r RotateSettings
		for _, k := range []string{"max_size", "retain", "rotate_tz"} {
			_, _ = r.Set(k, s)
		}
		var m MetricsSettings
		if err := m.set("metrics_interval", s); err == nil && (m.Interval < 100*time.Millisecond || m.Interval > time.Hour) {
			t.Errorf("metrics_interval %q = %v", s, m.Interval)
		}
	})
}

// A dump (tend's, or PM2's dump.pm2): apps or an error, never a panic.
func FuzzParseDump(f *testing.F) {
	f.Add([]byte(`[{"name":"api","pm_exec_path":"/srv/a.js","pm_cwd":"/srv","exec_mode":"cluster_mode","instances":2,"env":{"A":"1"}}]`))
	f.Add([]byte(`[{"_tend":{"v":1,"spec":{"name":"x","script":"/bin/sleep","cwd":"/"}}}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseDump(data, "dump.pm2")
	})
}
