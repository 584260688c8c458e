// Package metrics samples the CPU and memory of running instances on a ticker, so that ls and
// jlist read a cache instead of measuring on every call (PM2 pain 21).
package metrics

import (
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/proc"
)

// Usage is one process's latest figures.
type Usage struct {
	CPU    float64 // percent of one CPU since the previous sample, one decimal (PM2's monit.cpu)
	Memory int64   // resident bytes (PM2's monit.memory)
}

type sample struct {
	ticks uint64
	at    time.Time
	start uint64
}

// Sampler keeps the latest Usage per pid.
type Sampler struct {
	mu   sync.Mutex
	prev map[int]sample
	vals map[int]Usage
}

// NewSampler returns an empty sampler.
func NewSampler() *Sampler {
	return &Sampler{prev: map[int]sample{}, vals: map[int]Usage{}}
}

// Sample measures pids and forgets every pid not among them.
func (s *Sampler) Sample(pids []int) {
	now := time.Now()
	prev := make(map[int]sample, len(pids))
	vals := make(map[int]Usage, len(pids))
	s.mu.Lock()
	old := s.prev
	s.mu.Unlock()
	for _, pid := range pids {
		st, err := proc.ReadStat(pid)
		if err != nil {
			continue
		}
		u := Usage{Memory: st.RSSPages * proc.PageSize}
		if p, ok := old[pid]; ok && p.start == st.StartTicks {
			dt := now.Sub(p.at).Seconds()
			if dt > 0 && st.CPUTicks >= p.ticks {
				cpu := float64(st.CPUTicks-p.ticks) / proc.ClockTicks / dt * 100
				u.CPU = float64(int(cpu*10+0.5)) / 10
			}
		}
		prev[pid] = sample{ticks: st.CPUTicks, at: now, start: st.StartTicks}
		vals[pid] = u
	}
	s.mu.Lock()
	s.prev, s.vals = prev, vals
	s.mu.Unlock()
}

// Get returns the latest figures for pid. A pid not sampled yet (started since the last tick)
// gets its memory read now; its CPU share needs two samples.
func (s *Sampler) Get(pid int) Usage {
	s.mu.Lock()
	u, ok := s.vals[pid]
	s.mu.Unlock()
	if !ok && pid > 0 {
		if st, err := proc.ReadStat(pid); err == nil {
			u.Memory = st.RSSPages * proc.PageSize
		}
	}
	return u
}
