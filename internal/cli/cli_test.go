package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

func procs() []api.Process {
	var ps []api.Process
	for i, n := range []string{"api", "api", "worker"} {
		p := api.Process{Pid: 100 + i, Name: n, PmID: i}
		p.Pm2Env.Status = "online"
		p.Pm2Env.Namespace = "default"
		p.Pm2Env.ExecMode = "fork_mode"
		p.Pm2Env.PmUptime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		p.Monit = api.Monit{Memory: 42 << 20, CPU: 1.5}
		ps = append(ps, p)
	}
	ps[2].Pm2Env.Namespace = "jobs"
	ps[2].Pm2Env.Status = "errored"
	ps[2].Pid = 0
	return ps
}

func TestSelectProcs(t *testing.T) {
	for target, want := range map[string]int{"all": 3, "api": 2, "2": 1, "jobs": 1} {
		got, err := selectProcs(procs(), target)
		if err != nil || len(got) != want {
			t.Errorf("%s: %d, %v", target, len(got), err)
		}
	}
	if _, err := selectProcs(procs(), "ghost"); !errors.Is(err, errNotFound) {
		t.Errorf("ghost: %v", err)
	}
}

func TestRenderTable(t *testing.T) {
	var out bytes.Buffer
	renderTable(IO{Out: &out}, procs(), time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC))
	s := out.String()
	for _, want := range []string{"│ id │ name   │ mode │ pid │ status  │ ↺ │ uptime │ cpu  │ mem    │", "│ 0  │ api    │ fork │ 100 │ online  │ 0 │ 5m     │ 1.5% │ 42.0mb │", "│ 2  │ worker │ fork │ 0   │ errored │ 0 │ 0      │ 1.5% │ 42.0mb │"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\x1b[") {
		t.Error("no colours when stdout is not a terminal")
	}
}

func TestHumanFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Second: "5s", 3 * time.Minute: "3m", 5 * time.Hour: "5h", 72 * time.Hour: "3D"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q", d, got)
		}
	}
	for n, want := range map[int64]string{0: "0b", 2048: "2.0kb", 3 << 20: "3.0mb", 5 << 30: "5.0gb"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q", n, got)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for err, want := range map[error]int{
		usagef("bad"):                                 ExitUsage,
		fmt.Errorf("x: %w", config.ErrInvalid):        ExitUsage,
		&client.Error{Kind: "not_found"}:              ExitNotFound,
		&client.Error{Kind: "invalid"}:                ExitUsage,
		&client.Error{Kind: "failed"}:                 ExitFailure,
		fmt.Errorf("%w: gone", client.ErrUnreachable): ExitUnreachable,
		fmt.Errorf("%w: no app", errNotFound):         ExitNotFound,
		errors.New("anything else"):                   ExitFailure,
	} {
		if got := exitCode(err); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestStartFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"start", "a.js", "b.js"},
		{"start", "a.js", "--max-restarts", "x"},
		{"stop"},
		{"describe"},
		{"frobnicate"},
	} {
		var out, errb bytes.Buffer
		env := &Env{IO: IO{Out: &out, Err: &errb}, Home: t.TempDir(), Cwd: t.TempDir()}
		if code := Run(env, args); code != ExitUsage {
			t.Errorf("%v: exit %d", args, code)
		}
		if lines := strings.Count(strings.TrimSpace(errb.String()), "\n"); lines != 0 || !strings.HasPrefix(errb.String(), "tend: ") {
			t.Errorf("%v: stderr %q", args, errb.String())
		}
	}
}
