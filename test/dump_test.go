package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tend-sh/tend/test/e2e"
)

// save → kill → resurrect brings the apps back as they were: ids, instances, statuses, the
// cluster port and the environment.
func TestSaveKillResurrect(t *testing.T) {
	t.Parallel()
	e2e.NeedNode(t)
	h := newHarness(t)
	addr := h.StartCluster(e2e.WriteApp(t, t.TempDir(), "hello.js", e2e.HelloJS), 2)
	h.WaitOnline("hello", 2)
	h.RunEnv([]string{"GREETING=hi"}, "start", e2e.AppBin, "--name", "resting", "-s")
	h.OK("stop", "resting", "-s")
	before := h.Jlist()
	out := h.OK("save")
	dump := filepath.Join(h.Home, "dump.pm2")
	if !strings.Contains(out, "saved 3 instances in "+dump) {
		t.Fatalf("save: %q", out)
	}
	if st, err := os.Stat(dump); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("dump: %v, mode %v", err, st.Mode())
	}
	h.OK("save") // the first one goes to dump.pm2.bak
	if _, err := os.Stat(dump + ".bak"); err != nil {
		t.Fatal(err)
	}
	h.OK("kill")
	h.OK("resurrect", "-s")
	h.WaitOnline("hello", 2)
	after := h.Jlist()
	if len(after) != len(before) {
		t.Fatalf("%d instances after resurrect, %d before", len(after), len(before))
	}
	for i := range before {
		if after[i].PmID != before[i].PmID || after[i].Name != before[i].Name || after[i].Pm2Env.Status != before[i].Pm2Env.Status {
			t.Errorf("instance %d: %s/%d %s, was %s/%d %s", i, after[i].Name, after[i].PmID, after[i].Pm2Env.Status,
				before[i].Name, before[i].PmID, before[i].Pm2Env.Status)
		}
	}
	if got := spread(t, addr, 20); got["0"]+got["1"] != 20 {
		t.Errorf("the cluster port after resurrect: %v", got)
	}
	if env := h.OK("env", "2"); !strings.Contains(env, "GREETING: hi\n") {
		t.Errorf("env of the resurrected app: %q", env)
	}
	// Again: every app runs already, so nothing is done, and that is said.
	r := h.Run("resurrect", "-s")
	if r.Code != 0 || !strings.Contains(r.Err, "already run; left as they are") || len(h.Jlist()) != len(before) {
		t.Fatalf("resurrect twice: exit %d, %q", r.Code, r.Err)
	}
	// A broken dump: the backup is used, and the broken one is moved aside (PM2 deletes it).
	h.OK("delete", "all", "-s")
	os.WriteFile(dump, []byte("[{\n"), 0o600)
	r = h.Run("resurrect", "-s")
	if r.Code != 0 || !strings.Contains(r.Err, "using "+dump+".bak; it is now "+dump+".broken") {
		t.Fatalf("resurrect of a broken dump: exit %d, %q", r.Code, r.Err)
	}
	if _, err := os.Stat(dump); !os.IsNotExist(err) {
		t.Errorf("the broken dump is still in its place: %v", err)
	}
	h.WaitOnline("hello", 2)
}
