// Package metrics measures the process trees of running instances from one scan of /proc per
// tick, so that ls, jlist, describe, the memory limit and /metrics read a cache instead of
// measuring on every call (PM2 pain 21).
package metrics

import (
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/proc"
)

// Root is what to measure for one instance: its main process and that process's group.
type Root struct {
	ID   int // the instance's id: what Get takes
	Pid  int
	Pgid int // 0: the pid's own
}

// Usage is one instance's latest figures, for its whole process tree: the main process, its
// process group, and the descendants that left the group (setsid).
type Usage struct {
	CPU    float64 // percent of one CPU since the previous sample, one decimal (PM2's monit.cpu)
	Memory int64   // resident bytes, summed over the tree (PM2's monit.memory, of the main pid only)
	Procs  int     // processes in the tree
	// CPUSeconds is the CPU time the instance's trees used while they were sampled, since the
	// daemon began: it only grows (Prometheus' counter).
	CPUSeconds float64
	At         time.Time // when it was sampled (zero: never)
}

// pidSample is one process's CPU ticks at a sample; start tells apart two processes of one pid.
type pidSample struct {
	ticks, start uint64
}

// Sampler keeps the latest Usage per instance, and what sampling costs.
type Sampler struct {
	mu    sync.Mutex
	prev  map[int]pidSample
	at    time.Time
	vals  map[int]Usage
	total map[int]float64
	cost  Cost
}

// Cost is what sampling took, for the daemon's own figures.
type Cost struct {
	Samples int64
	Seconds float64 // wall time spent in Sample
	Procs   int     // processes read at the last sample
}

// NewSampler returns an empty sampler.
func NewSampler() *Sampler {
	return &Sampler{prev: map[int]pidSample{}, vals: map[int]Usage{}, total: map[int]float64{}}
}

// Sample measures the trees of roots from one scan of /proc, and forgets every instance not
// among them. A process that ends between two samples loses its CPU time since the first.
func (s *Sampler) Sample(roots []Root) {
	began := time.Now()
	stats := proc.AllStats()
	trees := Trees(stats, roots)

	s.mu.Lock()
	defer s.mu.Unlock()
	prev, last := s.prev, s.at
	dt := began.Sub(last).Seconds()
	next := make(map[int]pidSample, len(prev))
	vals := make(map[int]Usage, len(roots))
	total := make(map[int]float64, len(roots))
	for i, r := range roots {
		u := Usage{Procs: len(trees[i]), At: began}
		var ticks uint64
		for _, st := range trees[i] {
			u.Memory += st.RSSPages * proc.PageSize
			next[st.Pid] = pidSample{ticks: st.CPUTicks, start: st.StartTicks}
			switch p, ok := prev[st.Pid]; {
			case ok && p.start == st.StartTicks && st.CPUTicks >= p.ticks:
				ticks += st.CPUTicks - p.ticks
			case !ok && !last.IsZero() && proc.StartedAt(st.StartTicks).After(last):
				ticks += st.CPUTicks // born since the last sample: all its time is new
			}
		}
		total[r.ID] = s.total[r.ID] + float64(ticks)/proc.ClockTicks
		u.CPUSeconds = total[r.ID]
		if !last.IsZero() && dt > 0 {
			cpu := float64(ticks) / proc.ClockTicks / dt * 100
			u.CPU = float64(int(cpu*10+0.5)) / 10
		}
		vals[r.ID] = u
	}
	s.prev, s.at, s.vals, s.total = next, began, vals, total
	s.cost.Samples++
	s.cost.Seconds += time.Since(began).Seconds()
	s.cost.Procs = len(stats)
}

// Get returns the latest figures of the instance id; ok is false when it was not sampled (it
// does not run, or started since the last tick).
func (s *Sampler) Get(id int) (Usage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.vals[id]
	return u, ok
}

// Cost returns what sampling has taken so far.
func (s *Sampler) Cost() Cost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cost
}

// Trees groups stats by root: for each, the root, every process of its group, and every
// descendant of those (which finds those that left the group). A process is counted once, under
// the first root that claims it.
func Trees(stats []proc.Stat, roots []Root) [][]proc.Stat {
	byPid := make(map[int]int, len(stats))
	children := make(map[int][]int, len(stats))
	groups := map[int][]int{}
	want := make(map[int]bool, len(roots))
	for _, r := range roots {
		if r.Pid > 0 {
			want[pgidOf(r)] = true
		}
	}
	for i, st := range stats {
		byPid[st.Pid] = i
		children[st.PPid] = append(children[st.PPid], i)
		if want[st.Pgid] {
			groups[st.Pgid] = append(groups[st.Pgid], i)
		}
	}
	claimed := make(map[int]bool, len(roots))
	out := make([][]proc.Stat, len(roots))
	for ri, r := range roots {
		if r.Pid <= 0 {
			continue
		}
		var queue []int
		if i, ok := byPid[r.Pid]; ok {
			queue = append(queue, i)
		}
		queue = append(queue, groups[pgidOf(r)]...)
		for len(queue) > 0 {
			i := queue[0]
			queue = queue[1:]
			if claimed[i] {
				continue
			}
			claimed[i] = true
			out[ri] = append(out[ri], stats[i])
			queue = append(queue, children[stats[i].Pid]...)
		}
	}
	return out
}

func pgidOf(r Root) int {
	if r.Pgid > 0 {
		return r.Pgid
	}
	return r.Pid
}

// Quick reads one process's memory now, for an instance started since the last sample.
func Quick(pid int) Usage {
	var u Usage
	if st, err := proc.ReadStat(pid); err == nil {
		u.Memory, u.Procs = st.RSSPages*proc.PageSize, 1
	}
	return u
}
