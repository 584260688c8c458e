package faults

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/httpload"
	"github.com/tend-sh/tend/test/e2e"
)

// kill -9 of the daemon, again and again, while a Node cluster app, a fork-mode Node app that
// logs and a Python app on inherited sockets serve a load that never retries: the keeper starts
// the next daemon by itself and it adopts everything, so no request fails, no connection is
// refused, no log line is lost or doubled and every pid stays.
func TestKill9DaemonUnderLoad(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	kills := scale(3, 20)
	fault := fmt.Sprintf("kill -9 the daemon ×%d under load", kills)
	h := e2e.New(t)
	h.ExpectLogError("keeper: the daemon died")
	dir := t.TempDir()
	nodeAddr := h.StartCluster(e2e.WriteApp(t, dir, "hello.js", e2e.HelloJS), 2)
	h.OK("start", e2e.WriteApp(t, dir, "ticker.js", e2e.TickerJS), "-s")
	pyPort := e2e.FreePort(t)
	pyApp, _ := filepath.Abs("../../examples/cluster-python/app.py")
	h.OK("start", pyApp, "--name", "py", "--port", strconv.Itoa(pyPort), "--listen-timeout", e2e.ListenTimeout, "-s")
	pyAddr := fmt.Sprintf("127.0.0.1:%d", pyPort)
	h.WaitOnline("hello", 2)
	h.WaitOnline("py", 1)
	ticker := h.WaitStatus("ticker", "online")
	e2e.WaitFile(t, ticker.Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Contains(s, "tick 5\n") })
	before := h.Jlist()

	ctx, cancel := context.WithCancel(context.Background())
	nodeLoad, waitNode := httpload.Loop(ctx, nodeAddr, 8)
	pyLoad, waitPy := httpload.Loop(ctx, pyAddr, 8)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			waitNode()
			waitPy()
		}
	}
	defer stop()
	served := func() {
		n, p := nodeLoad.OK.Load(), pyLoad.OK.Load()
		e2e.Poll(15*time.Second, func() bool { return nodeLoad.OK.Load() >= n+e2e.LoadServed && pyLoad.OK.Load() >= p+e2e.LoadServed })
	}
	served()
	var backIn []time.Duration
	for range kills {
		killed := time.Now()
		h.KillDaemon() // nobody runs a command until the keeper's new daemon has written its pid
		e2e.WaitUntil(t, 10*time.Second, "every app adopted", func() bool { return e2e.SamePids(before, h.Jlist()) })
		backIn = append(backIn, time.Since(killed))
		served()
	}
	stop()

	for name, res := range map[string]*httpload.Result{"node": nodeLoad, "python": pyLoad} {
		lost(t, fault, res.Failed.Load()+res.Refused.Load(), fmt.Sprintf("failed or refused requests of %d to %s", res.OK.Load()+res.Failed.Load()+res.Refused.Load(), name))
	}
	after := h.Jlist()
	changed := 0
	for i, p := range after {
		if i >= len(before) || p.Pid != before[i].Pid || p.Pm2Env.RestartTime != 0 {
			changed++
		}
	}
	lost(t, fault, int64(changed+len(before)-len(after)), fmt.Sprintf("of %d instances restarted or gone", len(before)))
	n, bad, first, err := e2e.TickFaults(ticker.Pm2Env.PmOutLogPath)
	if err != nil {
		t.Fatal(err)
	}
	if first != "" {
		t.Logf("the ticker's log: %s", first)
	}
	lost(t, fault, int64(bad), fmt.Sprintf("log lines lost, doubled or torn of %d", n))
	slices.Sort(backIn)
	allowed(t, fault, "every app adopted again in %v (median), %v (worst)",
		backIn[len(backIn)/2].Round(time.Millisecond), backIn[len(backIn)-1].Round(time.Millisecond))
}
