package supervisor

import (
	"os"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/state"
	"golang.org/x/sys/unix"
)

// Restore with what a keeper kept: the newest process of an instance is adopted with its pipes
// (what it wrote while no daemon ran reaches its log file), even when the registry still names
// an older one, which is stopped.
func TestRestoreAdoptsKeptRun(t *testing.T) {
	f := newFixture(t, true)
	held := func(pid int, tick uint64) (KeptRun, int) {
		h, err := proc.NewHolder("kept", 0, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		ends := h.TakeChildEnds()
		t.Cleanup(func() {
			for _, fd := range ends {
				unix.Close(fd)
			}
		})
		f.fake.Live(pid, tick)
		return KeptRun{Holder: h, Info: proc.RunInfo{App: "kept", Instance: 0, Pid: pid, StartTick: tick}}, ends[1]
	}
	older, _ := held(554, 9)
	newer, stdout := held(555, 12)
	if _, err := unix.Write(stdout, []byte("written while no daemon ran\n")); err != nil {
		t.Fatal(err)
	}
	f.sup.Restore(state.Registry{NextID: 1, Apps: []state.App{{Spec: spec("kept"), Instances: []state.Instance{
		{ID: 0, Status: string(Online), Pid: 554, StartTick: 9, Restarts: 2},
	}}}}, Kept{Runs: []KeptRun{older, newer}})
	f.eventually("the newer adopted", func() bool { return f.info("kept")[0].Pid == 555 })
	i := f.info("kept")[0]
	if i.Status != Online || i.History.Restarts != 2 {
		t.Fatalf("%+v", i)
	}
	f.eventually("the older stopped", func() bool {
		for _, p := range f.fake.Adopted() {
			if p.Pid() == 554 {
				return p.Exited()
			}
		}
		return false
	})
	f.eventually("the gap's line in the log file", func() bool {
		b, _ := os.ReadFile(i.OutLog)
		return strings.Contains(string(b), "written while no daemon ran\n")
	})
}
