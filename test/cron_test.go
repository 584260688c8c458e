package test

import (
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/test/e2e"
)

// cron_restart with seconds: a fork-mode app is restarted when it comes due, counted, said in
// the event stream and tend.log; describe shows the next time; a cluster app is reloaded.
func TestCronRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "job", "--cron-restart", "*/2 * * * * *", "-s")
	first := h.WaitStatus("job", "online")
	ev := h.FollowEvents()
	e := ev.WaitFor("cron", 10*time.Second, func(e events.Event) bool { return e.Kind == "cron" && e.App == "job" })
	if e.Reason != "restart" || e.Message != "*/2 * * * * *" {
		t.Errorf("cron event %+v", e)
	}
	h.WaitFor("job", 10*time.Second, "restarted by cron", func(p proc) bool {
		return p.Pm2Env.RestartTime >= 1 && p.Pid != first.Pid && p.Pid > 0
	})
	if d := h.OK("describe", "job"); !strings.Contains(d, "cron restart") || !strings.Contains(d, "*/2 * * * * * (next ") {
		t.Errorf("describe lacks the cron line:\n%s", d)
	}
	if env := h.Pm2Env(first.PmID); env["cron_restart"] != "*/2 * * * * *" || env["_tend_cron_next"] == nil {
		t.Errorf("jlist cron fields: %v %v", env["cron_restart"], env["_tend_cron_next"])
	}

	h.StartCluster(e2e.WriteApp(t, t.TempDir(), "web.js", e2e.HelloJS), 2)
	h.WaitOnline("web", 2)
	h.OK("restart", "web", "--cron-restart", "*/2 * * * * *", "-s")
	h.WaitOnline("web", 2)
	e = ev.WaitFor("cron of web", 10*time.Second, func(e events.Event) bool { return e.Kind == "cron" && e.App == "web" })
	if e.Reason != "reload" {
		t.Errorf("cron of a cluster app: %+v, want a reload", e)
	}
	ev.WaitFor("reload done", 15*time.Second, func(e events.Event) bool { return e.Kind == "reload" && e.App == "web" && e.Reason == "done" })
}

// tend export reads the running apps from the daemon (or a config) and writes what an engine
// takes; a config's export needs no daemon.
func TestExportRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "exported", "-i", "2", "-s")
	out := h.OK("export", "kubernetes", "--image", "example/app:1")
	for _, want := range []string{"kind: Deployment", "name: exported", "replicas: 2", "image: example/app:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("export kubernetes lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	cfg := e2e.WriteApp(t, dir, "eco.json", `{"apps":[{"name":"fromfile","script":"`+e2e.AppBin+`","env":{"PORT":"3000"}}]}`)
	out = h.OK("export", "compose", cfg)
	if !strings.Contains(out, "  fromfile:\n") || !strings.Contains(out, `- "3000:3000"`) {
		t.Errorf("export compose of a config:\n%s", out)
	}
}
