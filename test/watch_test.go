package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/test/e2e"
)

// --watch restarts the app when a file under its folder changes: a burst of a thousand files is
// one restart, node_modules is left out, and PM2's switches hold (stop ends watching, restart
// --watch toggles it, jlist's watch tells the truth).
func TestWatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	app := e2e.WriteApp(t, dir, "app.js", "setInterval(() => {}, 1000)\n")
	for _, d := range []string{"src", "node_modules"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if r := h.Run("start", app, "--cwd", dir, "--watch=nope", "-s"); r.Code != 2 || !strings.Contains(r.Err, "watch path") || strings.Count(r.Err, "\n") != 1 {
		t.Errorf("--watch of a path that does not exist: exit %d, %q", r.Code, r.Err)
	}
	h.OK("start", e2e.AppBin, "--name", "bystander", "-s") // not watched: never restarted by a change
	h.OK("start", app, "--cwd", dir, "--watch", "-s")      // the app's folder (PM2: pm_cwd)
	p := h.WaitStatus("app", "online")
	if h.Pm2Env(p.PmID)["watch"] != true {
		t.Fatal("jlist watch is not true")
	}
	ev := h.FollowEvents()
	touch := func(rel string) {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	restarts := func(n int) proc {
		return h.WaitFor("app", 15*time.Second, fmt.Sprintf("%d restarts, online", n), func(p proc) bool {
			return p.Pm2Env.RestartTime == n && p.Pm2Env.Status == "online"
		})
	}
	touch("src/a.js")
	e := ev.WaitFor("watch", 10*time.Second, func(e events.Event) bool { return e.Kind == "watch" })
	if e.Message != filepath.Join("src", "a.js") || e.Reason != "restart" {
		t.Errorf("watch event %+v", e)
	}
	restarts(1)

	// A thousand files at once: one restart.
	for i := range 1000 {
		touch(fmt.Sprintf("src/f%d.js", i))
	}
	ev.WaitFor("watch of the burst", 10*time.Second, func(e events.Event) bool { return e.Kind == "watch" })
	restarts(2)
	// node_modules is left out; a change in src after it is the next restart, so the count says
	// the burst was one restart and node_modules none.
	touch("node_modules/x.js")
	touch("src/b.js")
	e = ev.WaitFor("watch of src/b.js", 10*time.Second, func(e events.Event) bool { return e.Kind == "watch" })
	if e.Message != filepath.Join("src", "b.js") {
		t.Errorf("the restart came from %q, want src/b.js (node_modules is ignored)", e.Message)
	}
	restarts(3)
	if b, _ := h.Get("bystander"); b.Pm2Env.RestartTime != 0 {
		t.Errorf("another app restarted %d times: a change restarts the watching app only", b.Pm2Env.RestartTime)
	}

	// PM2's switches.
	h.OK("stop", "app", "--watch", "-s")
	if w := h.Pm2Env(p.PmID)["watch"]; w != false {
		t.Errorf("after stop: watch %v", w)
	}
	h.OK("start", "app", "-s")
	h.WaitStatus("app", "online")
	if w := h.Pm2Env(p.PmID)["watch"]; w != false {
		t.Errorf("after start of the stopped app: watch %v, PM2 keeps it off", w)
	}
	h.OK("restart", "app", "--watch", "-s")
	if w := h.Pm2Env(p.PmID)["watch"]; w != true {
		t.Errorf("restart --watch of an unwatched app: watch %v, want it toggled on", w)
	}
	h.OK("restart", "app", "--watch", "-s")
	if w := h.Pm2Env(p.PmID)["watch"]; w != false {
		t.Errorf("restart --watch of a watched app: watch %v, want it toggled off", w)
	}
}

// In cluster mode a change reloads the app: no request fails.
func TestWatchReloadsCluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	app := e2e.WriteApp(t, dir, "web.js", e2e.HelloJS)
	port := e2e.FreePort(t)
	if r := h.RunEnv([]string{"PORT=" + strconv.Itoa(port)}, "start", app, "-i", "2", "--cwd", dir, "--watch", "--listen-timeout", e2e.ListenTimeout, "-s"); r.Code != 0 {
		t.Fatalf("start: %d %s", r.Code, r.Err)
	}
	h.WaitOnline("web", 2)
	ev := h.FollowEvents()
	res := e2e.LoadDuring(t, fmt.Sprintf("127.0.0.1:%d", port), func() {
		os.WriteFile(filepath.Join(dir, "changed.js"), []byte("//"), 0o644)
		e := ev.WaitFor("watch", 10*time.Second, func(e events.Event) bool { return e.Kind == "watch" })
		if e.Reason != "reload" {
			t.Errorf("watch of a cluster app: %+v, want a reload", e)
		}
		for range 2 {
			ev.WaitFor("reload done", 30*time.Second, func(e events.Event) bool { return e.Kind == "reload" && e.Reason == "done" })
		}
	})
	if n, r := res.Failed.Load(), res.Refused.Load(); n+r != 0 {
		t.Errorf("%d failed and %d refused during the watch reload (%d served)", n, r, res.OK.Load())
	}
}
