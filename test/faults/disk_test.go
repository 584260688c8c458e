package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/test/e2e"
	"golang.org/x/sys/unix"
)

// smallDisk mounts a tmpfs of size bytes on dir (root only: the test is skipped elsewhere, with
// a message), unmounted when the test ends.
func smallDisk(t *testing.T, dir string, size int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full disk is played by a small tmpfs, which needs root to mount")
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// fill writes a file that takes what is left of the disk at dir.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			return p
		}
	}
}

// An app's log on a full disk: its lines are dropped and counted (describe, jlist), said once in
// tend.log, the app runs on, the file holds whole lines only; once space is back, the file says
// how many lines were lost and goes on.
func TestFullDiskLogs(t *testing.T) {
	t.Parallel()
	const fault = "a log disk filled to the last byte"
	h := e2e.New(t)
	disk := t.TempDir()
	smallDisk(t, disk, 8<<20) // the flood's 3 MB fit; then the filler takes the rest
	out := filepath.Join(disk, "app-out.log")
	h.OK("start", e2e.AppBin, "--name", "app", "-o", out, "-s", "--", "-echo-stdin", "-flood", "50000")
	p := h.WaitStatus("app", "online")
	ev := h.FollowEvents()
	filler := fill(t, disk)
	// Lines longer than a page: a short one could still fit in the room left in the file's last
	// page (tmpfs takes a page at a time), and then nothing fails.
	pad := strings.Repeat("x", 5000)
	for i := range 20 {
		h.OK("send", "app", fmt.Sprintf("on the full disk %d %s", i, pad))
	}
	got := h.WaitFor("app", 10*time.Second, "lines counted as dropped", func(q e2e.Proc) bool {
		return q.Pm2Env.LogDropped != nil && q.Pm2Env.LogDropped.Out >= 20
	})
	if !strings.Contains(got.Pm2Env.LogDropped.Reason, "no space left on device") || got.Pid != p.Pid {
		t.Fatalf("dropped %+v, pid %d (was %d)", got.Pm2Env.LogDropped, got.Pid, p.Pid)
	}
	if d := h.OK("describe", "app"); !strings.Contains(d, "log lines dropped") {
		t.Fatalf("describe does not say what was dropped:\n%s", d)
	}
	os.Remove(filler)
	h.OK("send", "app", "space is back")
	text := e2e.WaitFile(t, out, 10*time.Second, func(s string) bool { return strings.HasSuffix(s, "stdin=space is back\n") })
	// The markers count every lost line: one marker, or several when a marker alone found room
	// in the file's last page while the disk was still full.
	dropped := h.Jlist()[0].Pm2Env.LogDropped.Out
	told := 0
	for _, m := range regexp.MustCompile(`\[tend: (\d+) lines were not written here: `).FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		told += n
	}
	if int64(told) != dropped {
		t.Fatalf("the markers tell of %d lost lines, jlist counts %d: %.300q", told, dropped, text[max(len(text)-300, 0):])
	}
	written, torn := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "line "), strings.HasPrefix(l, "stdin="):
			written++
		case !strings.HasPrefix(l, "[tend: "):
			torn++
		}
	}
	const sent = 50000 + 20 + 1 // the flood, the lines sent on the full disk, and the last
	lost(t, fault, int64(sent-written-told), fmt.Sprintf("lines neither written nor counted of %d (%d written, %d counted as dropped)", sent, written, told))
	lost(t, fault, int64(torn), "torn lines in the file")
	if got.Pid != h.Jlist()[0].Pid {
		lost(t, fault, 1, "restart of the app")
	}
	log, _ := os.ReadFile(filepath.Join(h.Home, "tend.log"))
	if n := strings.Count(string(log), "log writes fail"); n != 1 {
		t.Errorf("tend.log says %d times that writes fail, want once for the episode", n)
	}
	if !strings.Contains(string(log), "log writes work again") {
		t.Error("tend.log does not say the writes work again")
	}
	// And the event stream said both, with the count at the end.
	ev.WaitFor("log_drop begin", 10*time.Second, func(e events.Event) bool { return e.Kind == "log_drop" && e.Reason == "begin" })
	end := ev.WaitFor("log_drop end", 10*time.Second, func(e events.Event) bool { return e.Kind == "log_drop" && e.Reason == "end" })
	if end.Stream != "stdout" || end.Dropped <= 0 || end.App != "app" {
		t.Errorf("log_drop end event %+v", end)
	}
}

// $TEND_HOME on a full disk: a start that cannot be saved in the registry fails with one line
// (no silent OK), the last good registry stays, and once space is back the next change saves.
func TestFullDiskRegistry(t *testing.T) {
	t.Parallel()
	const fault = "$TEND_HOME's disk full"
	h := e2e.New(t)
	smallDisk(t, h.Home, 1<<20)
	t.Cleanup(func() { h.Run("kill") }) // before the unmount (cleanups run last first)
	h.ExpectLogError("the registry cannot be saved")
	h.OK("start", e2e.AppBin, "--name", "first", "-s")
	h.WaitRegistry(map[string]string{"first": "online"})
	filler := fill(t, h.Home)
	h.OneLineError(1, "registry.json could not be saved", "start", e2e.AppBin, "--name", "second", "-s")
	reg := h.Registry()
	if len(reg) != 1 || len(reg["first"]) != 1 {
		t.Fatalf("the last good registry should stay: %v", reg)
	}
	lost(t, fault, int64(1-len(reg["first"])), "apps lost from the last good registry")
	os.Remove(filler)
	h.OK("restart", "second", "-s")
	h.WaitRegistry(map[string]string{"first": "online", "second": "online"})
	allowed(t, fault, "the start that could not be saved failed in one line; the next change saved both apps")
}
