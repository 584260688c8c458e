package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/client"
)

// tend update names this binary by the path it was run from, and says what now runs.
func TestUpdate(t *testing.T) {
	for _, tt := range []struct {
		name      string
		exeErr    error
		updateErr error
		stdout    string
		err       string
	}{
		{name: "ok", stdout: "tend updated: daemon pid 43 runs version 9.9.9 from /usr/local/bin/tend; every app kept running\n"},
		{name: "no binary", exeErr: errors.New("readlink: no such file"), err: "find this tend binary: readlink: no such file"},
		{name: "refused", updateErr: errFailed, err: errFailed.Msg},
	} {
		t.Run(tt.name, func(t *testing.T) {
			io, _, out, _ := testIO()
			fc := &fakeClient{running: true, errs: map[string]error{"Update /usr/local/bin/tend": tt.updateErr}}
			opts := &UpdateOptions{IO: io, Client: func() (client.API, error) { return fc, nil },
				Exe: func() (string, error) { return "/usr/local/bin/tend", tt.exeErr }}
			err := updateRun(opts)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || out.String() != tt.stdout {
				t.Fatalf("err %v, stdout %q, want %q", err, out.String(), tt.stdout)
			}
		})
	}
}

// tend env <id>: the instance's environment, KEY: value a line, sorted; an id only.
func TestEnv(t *testing.T) {
	e := newTestEnv(t)
	e.c.procs[1].Pm2Env.Env = map[string]string{"PORT": "3000", "NODE_ENV": "production", "A": ""}
	// With what tend sets per instance, which jlist shows as pm2_env's own fields.
	e.c.procs[1].Pm2Env.InstanceVar, e.c.procs[1].Pm2Env.NodeAppInstance = "NODE_APP_INSTANCE", 1
	if code := e.run("env", "1"); code != 0 || e.out.String() != "A: \nNODE_APP_INSTANCE: 1\nNODE_ENV: production\nPORT: 3000\nname: api\nnamespace: default\npm_id: 1\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, e.out, e.errOut)
	}
	// Secrets are masked unless --show-secrets.
	e = newTestEnv(t)
	e.c.procs[1].Pm2Env.Env = map[string]string{"API_TOKEN": "t0k", "DATABASE_URL": "postgres://u:pw@db/x"}
	if code := e.run("env", "1"); code != 0 || !strings.HasPrefix(e.out.String(), "API_TOKEN: ********\nDATABASE_URL: postgres://u:********@db/x\n") {
		t.Fatalf("masked: exit %d, stdout %q", code, e.out)
	}
	e = newTestEnv(t)
	e.c.procs[1].Pm2Env.Env = map[string]string{"API_TOKEN": "t0k"}
	if code := e.run("env", "1", "--show-secrets"); code != 0 || !strings.HasPrefix(e.out.String(), "API_TOKEN: t0k\n") {
		t.Fatalf("--show-secrets: exit %d, stdout %q", code, e.out)
	}
	e = newTestEnv(t)
	if code := e.run("env", "7"); code != ExitNotFound || e.errOut.String() != "tend: no process with id 7 (see tend ls)\n" {
		t.Fatalf("unknown id: exit %d, %q", code, e.errOut)
	}
	e = newTestEnv(t)
	if code := e.run("env", "api"); code != ExitUsage || e.errOut.String() != "tend: tend env takes an instance id, not \"api\" (the ids are in tend ls)\n" {
		t.Fatalf("a name: exit %d, %q", code, e.errOut)
	}
}

// jlist keeps PM2's shape, secrets included; --mask-secrets masks them, in env and their copies.
func TestJlistMaskSecrets(t *testing.T) {
	e := newTestEnv(t)
	e.c.raw = []byte(`[{"name":"a","pm2_env":{"status":"online","API_TOKEN":"t0k","PORT":"80","env":{"API_TOKEN":"t0k","PORT":"80"}}}]` + "\n")
	if code := e.run("jlist"); code != 0 || !strings.Contains(e.out.String(), `"t0k"`) {
		t.Fatalf("plain jlist: %q", e.out)
	}
	before := len(e.out.String())
	if code := e.run("jlist", "--mask-secrets"); code != 0 || strings.Contains(e.out.String()[before:], "t0k") || !strings.Contains(e.out.String()[before:], `"PORT":"80"`) {
		t.Fatalf("--mask-secrets: %q", e.out.String()[before:])
	}
}
