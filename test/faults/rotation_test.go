package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/test/e2e"
)

// A flood rotated every 1 MB, gzip on, every file kept: across the files, every line once,
// whole, in order.
func TestRotationUnderFlood(t *testing.T) {
	t.Parallel()
	n := scale(300_000, 1_000_000)
	fault := fmt.Sprintf("rotation every 1 MB under a flood of %d lines", n)
	h := e2e.New(t)
	cfg := filepath.Join(t.TempDir(), "apps.json")
	os.WriteFile(cfg, []byte(`{"apps": [{"name": "flood", "script": "`+e2e.AppBin+`", "args": ["-flood", "`+fmt.Sprint(n)+`"],
		"max_size": "1M", "retain": "all", "compress": true}]}`), 0o644)
	start := time.Now()
	h.OK("start", cfg, "-s")
	p := h.WaitStatus("flood", "online")
	out := e2e.WaitLog(t, p.Pm2Env.PmOutLogPath, 120*time.Second, func(s string) bool { return strings.Count(s, "\n") >= n })
	took := time.Since(start)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	bad := 0
	for i, l := range lines {
		if l != fmt.Sprintf("line %07d %s", i, strings.Repeat("x", 50)) {
			bad++
		}
	}
	lost(t, fault, int64(bad+abs(len(lines)-n)), fmt.Sprintf("lines lost, doubled, torn or out of place of %d", n))
	allowed(t, fault, "%d rotated files; every line written within %v", len(logs.Rotated(p.Pm2Env.PmOutLogPath)), took.Round(100*time.Millisecond))
}

func abs(x int) int { return max(x, -x) }
