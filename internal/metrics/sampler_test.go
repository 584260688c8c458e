package metrics

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/proc"
)

func pidsOf(stats []proc.Stat) []int {
	var out []int
	for _, s := range stats {
		out = append(out, s.Pid)
	}
	slices.Sort(out)
	return out
}

// Trees finds a root's group, the descendants that left it, and nothing of another root's.
func TestTrees(t *testing.T) {
	stats := []proc.Stat{
		{Pid: 1, PPid: 0, Pgid: 1},
		{Pid: 10, PPid: 1, Pgid: 10},  // root a
		{Pid: 11, PPid: 10, Pgid: 10}, // its child
		{Pid: 12, PPid: 11, Pgid: 12}, // a grandchild that called setsid
		{Pid: 13, PPid: 12, Pgid: 12}, // and its child
		{Pid: 14, PPid: 1, Pgid: 10},  // re-parented, still in a's group
		{Pid: 20, PPid: 1, Pgid: 20},  // root b
		{Pid: 21, PPid: 20, Pgid: 20}, // its child
		{Pid: 30, PPid: 1, Pgid: 30},  // nobody's
		{Pid: 40, PPid: 0, Pgid: 0},   // a kernel thread
	}
	got := Trees(stats, []Root{{ID: 0, Pid: 10}, {ID: 1, Pid: 20}, {ID: 2, Pid: 99}, {ID: 3, Pid: 0}})
	for i, want := range [][]int{{10, 11, 12, 13, 14}, {20, 21}, nil, nil} {
		if p := pidsOf(got[i]); !slices.Equal(p, want) {
			t.Errorf("root %d: %v, want %v", i, p, want)
		}
	}
}

// Sample measures a real tree: the main process, a child, and a grandchild that left the group;
// the CPU of a busy member counts, and CPUSeconds only grows.
func TestSampleTree(t *testing.T) {
	// sh (the root, its own group) → sh busy loop, and → setsid sleep (another session).
	cmd := exec.Command("sh", "-c", "setsid sleep 30 & while :; do :; done & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range Trees(proc.AllStats(), []Root{{Pid: cmd.Process.Pid}})[0] {
			syscall.Kill(s.Pid, syscall.SIGKILL)
		}
		cmd.Wait()
	})
	s := NewSampler()
	root := []Root{{ID: 7, Pid: cmd.Process.Pid}}
	deadline := time.Now().Add(10 * time.Second)
	var u Usage
	for time.Now().Before(deadline) {
		s.Sample(root)
		u, _ = s.Get(7)
		if u.Procs == 3 && u.CPU > 10 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if u.Procs != 3 || u.CPU <= 10 || u.Memory <= 0 {
		t.Fatalf("tree of sh, a busy loop and a setsid sleep: %+v, want 3 processes and the loop's CPU", u)
	}
	before := u.CPUSeconds
	time.Sleep(200 * time.Millisecond)
	s.Sample(root)
	if u, _ = s.Get(7); u.CPUSeconds <= before {
		t.Errorf("CPUSeconds %v after %v: it must grow while the loop runs", u.CPUSeconds, before)
	}
	if _, ok := s.Get(8); ok {
		t.Error("an instance never sampled has figures")
	}
	// A root that is gone: nothing, and no panic.
	s.Sample([]Root{{ID: 9, Pid: 999999999}})
	if u, ok := s.Get(9); !ok || u.Procs != 0 || u.Memory != 0 {
		t.Errorf("a vanished root: %+v %v", u, ok)
	}
	if c := s.Cost(); c.Samples < 3 || c.Procs == 0 {
		t.Errorf("cost %+v", c)
	}
}

func TestQuick(t *testing.T) {
	if u := Quick(os.Getpid()); u.Memory <= 0 || u.Procs != 1 {
		t.Errorf("Quick(self): %+v", u)
	}
	if u := Quick(999999999); u != (Usage{}) {
		t.Errorf("Quick of no process: %+v", u)
	}
}
