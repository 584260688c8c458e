package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tend-sh/tend/test/e2e"
)

// chromium finds a headless-capable Chromium.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tend web in headless Chromium: the page loads with the token, lists the apps, draws a chart,
// shows the events; its restart button restarts the app; a request without the token gets 401
// and nothing else. The screenshot is saved for a person to look at.
func TestWebPage(t *testing.T) {
	t.Parallel()
	browser := chromium()
	if browser == "" {
		t.Skip("no chromium installed")
	}
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "webapp", "-s", "--", "-flood", "5", "-stderr", "2")
	h.WaitStatus("webapp", "online")
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(h.Bin, "web", "--listen", addr)
	cmd.Env = append(h.Env, "TEND_WEB_TOKEN=sesame")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	if !strings.Contains(line, "http://"+addr+"/?token=sesame") {
		t.Fatalf("tend web said %q", line)
	}
	go io.Copy(io.Discard, stderr)
	if r := h.Run("web", "--listen", addr); r.Code == 0 || !strings.Contains(r.Err, "is in use") || strings.Count(r.Err, "\n") != 1 {
		t.Errorf("a second tend web on the same port: exit %d, %q", r.Code, r.Err)
	}

	// No token, a wrong one: 401, and no app name in the answer.
	for _, u := range []string{"/", "/api/list", "/api/list?token=nope", "/v1/processes"} {
		resp, err := http.Get("http://" + addr + u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || strings.Contains(string(body), "webapp") {
			t.Errorf("GET %s without the token: %d %q", u, resp.StatusCode, body)
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	row := `#apps tbody tr[data-name="webapp"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+addr+"/?token=sesame"),
		chromedp.WaitVisible(row),
		chromedp.WaitVisible(`#logs span`),
	); err != nil {
		t.Fatalf("the page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`Number(document.getElementById('cpu').dataset.points) >= 2`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the chart never had two points: %v", err)
	}
	// The restart button restarts the app, and the event list says so.
	if err := chromedp.Do(ctx, chromedp.Click(row+` button[data-verb="restart"]`), chromedp.WaitVisible(`#events li`)); err != nil {
		t.Fatalf("restart from the page: %v", err)
	}
	h.WaitFor("webapp", 10*time.Second, "restarted from the page", func(p proc) bool { return p.Pm2Env.RestartTime == 1 })
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(os.TempDir(), "tend-web-page.png")
	if err := os.WriteFile(out, shot, 0o644); err == nil {
		t.Logf("screenshot: %s", out)
	}
}
