package cli

import (
	"strings"
	"testing"
	"time"
)

func TestEvents(t *testing.T) {
	stream := `{"time":"2026-11-30T06:40:01.5Z","kind":"online","app":"api","id":0,"pid":42,"reason":"ready"}

{"time":"2026-11-30T06:40:02Z","kind":"exit","app":"api","id":0,"pid":42,"exit_code":1,"uptime_ms":1500}
{"time":"2026-11-30T06:40:03Z","kind":"memory_limit","app":"api","id":1,"pid":43,"memory":314572800,"limit":209715200,"reason":"reload"}
{"time":"2026-11-30T06:40:04Z","kind":"scale","app":"api","from":2,"to":4}
{"time":"2026-11-30T06:40:05Z","kind":"lost","dropped":7,"message":"this listener fell behind"}
`
	e := newTestEnv(t)
	e.c.events = stream
	if code := e.run("events"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	at := func(sec, ms int) string {
		return time.Date(2026, 11, 30, 6, 40, sec, ms*1e6, time.UTC).Local().Format("15:04:05.000")
	}
	want := at(1, 500) + ` api[0] online (ready, pid 42)
` + at(2, 0) + ` api[0] exit (pid 42, exit code 1, after 1.5s)
` + at(3, 0) + ` api[1] memory limit (reload, pid 43, 300.0mb over 200.0mb)
` + at(4, 0) + ` api scale (2 → 4 instances)
` + at(5, 0) + ` lost (7 lost, this listener fell behind)
`
	if got := e.out.String(); got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
	}
	if e.errOut.String() != "tend: following the apps' events (Ctrl-C stops)\ntend: the daemon closed the event stream (it stopped)\n" {
		t.Errorf("stderr %q", e.errOut)
	}

	e = newTestEnv(t)
	e.c.events = stream
	if code := e.run("events", "--json"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got, want := e.out.String(), strings.ReplaceAll(stream, "\n\n", "\n"); got != want {
		t.Errorf("events --json:\n%s\nwant the lines as they came, without the heartbeat:\n%s", got, want)
	}
}

func TestMetricsCmd(t *testing.T) {
	e := newTestEnv(t)
	e.c.metrics = "# HELP x y\n# TYPE x gauge\nx 1\n"
	if code := e.run("metrics"); code != 0 || e.out.String() != e.c.metrics || e.c.Calls() != "Metrics" {
		t.Fatalf("exit %d, out %q, calls %q", code, e.out, e.c.Calls())
	}
	for _, bad := range []string{"9615", "host:port", "127.0.0.1:99999", "example.com:9615"} {
		e := newTestEnv(t)
		if code := e.run("metrics", "--listen", bad); code != ExitUsage || !strings.HasPrefix(e.errOut.String(), "tend: --listen: ") || strings.Count(e.errOut.String(), "\n") != 1 {
			t.Errorf("--listen %s: exit %d, %q", bad, code, e.errOut)
		}
	}
}
