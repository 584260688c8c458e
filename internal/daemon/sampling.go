package daemon

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/metrics"
	"github.com/tend-sh/tend/internal/supervisor"
)

// lookers is how long a read of the figures (ls, jlist, describe, a scrape, a screen) keeps the
// sampler at its fast cadence.
const lookers = time.Minute

// samplingState is the sampler's side of the daemon.
type samplingState struct {
	mu       sync.Mutex // one sample at a time: a sample's CPU deltas are from the one before
	last     time.Time
	settings atomic.Pointer[config.MetricsSettings] // in effect
	wake     chan struct{}                          // the settings changed
	memBusy  sync.Map                               // instance id → struct{}: a memory-limit replacement under way
}

// setMetrics puts new metrics settings in effect.
func (d *daemon) setMetrics(m config.MetricsSettings) {
	e := m.Effective()
	d.sampling.settings.Store(&e)
	select {
	case d.sampling.wake <- struct{}{}:
	default:
	}
}

func (d *daemon) metricsSettings() config.MetricsSettings {
	if m := d.sampling.settings.Load(); m != nil {
		return *m
	}
	return config.MetricsSettings{}.Effective()
}

// sampleLoop measures the apps' process trees: every interval while someone looked at the
// figures within the last minute or an app has a memory limit, else every idle interval, so
// that a daemon nobody looks at costs next to nothing.
func (d *daemon) sampleLoop() {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("sampler panic; figures are no longer updated", "panic", fmt.Sprint(p))
		}
	}()
	quit := d.quit()
	for {
		m := d.metricsSettings()
		read := time.Unix(0, d.lastRead.Load())
		d.sampling.mu.Lock()
		last := d.sampling.last
		d.sampling.mu.Unlock()
		if time.Since(read) < lookers || d.memoryLimited() || time.Since(last) >= m.Idle {
			d.sampleNow()
		}
		t := time.NewTimer(m.Interval)
		select {
		case <-t.C:
		case <-d.sampling.wake:
			t.Stop()
		case <-quit:
			t.Stop()
			return
		}
	}
}

// memoryLimited reports whether an app has max_memory_restart, which is checked at every tick.
func (d *daemon) memoryLimited() bool {
	for _, i := range d.sup.List() {
		if i.Spec.MaxMemoryRestart > 0 && i.Pid > 0 {
			return true
		}
	}
	return false
}

// sampleNow measures every running instance's tree once, and replaces those over their memory
// limit.
func (d *daemon) sampleNow() {
	d.sampling.mu.Lock()
	infos := d.sup.List()
	roots := make([]metrics.Root, 0, len(infos))
	for _, i := range infos {
		if i.Pid > 0 {
			roots = append(roots, metrics.Root{ID: i.ID, Pid: i.Pid})
		}
	}
	d.sampler.Sample(roots)
	d.sampling.last = time.Now()
	d.sampling.mu.Unlock()
	d.gen.Add(1)
	d.checkMemory(infos)
}

// looked notes a read of the figures, and samples first when the last sample is older than two
// intervals (after an idle spell), so that the reader sees figures of now.
func (d *daemon) looked() {
	d.lastRead.Store(time.Now().UnixNano())
	d.sampling.mu.Lock()
	stale := time.Since(d.sampling.last) > 2*d.metricsSettings().Interval
	d.sampling.mu.Unlock()
	if stale {
		d.sampleNow()
	}
}

// usage is the instance's figures: its tree's at the last sample, or, for a process started
// since, its main process's read now (CPU needs two samples).
func (d *daemon) usage(i *supervisor.Info) metrics.Usage {
	if i.Pid <= 0 {
		return metrics.Usage{}
	}
	u, ok := d.sampler.Get(i.ID)
	if !ok || u.At.Before(i.Started) {
		q := metrics.Quick(i.Pid)
		q.CPUSeconds = u.CPUSeconds
		return q
	}
	return u
}

// checkMemory replaces, one at a time per instance, the processes whose tree is over the app's
// max_memory_restart: a reload in cluster mode, a restart in fork mode (the supervisor decides).
func (d *daemon) checkMemory(infos []*supervisor.Info) {
	for _, i := range infos {
		limit := i.Spec.MaxMemoryRestart
		if limit <= 0 || i.Pid <= 0 || i.Status != supervisor.Online {
			continue
		}
		u, ok := d.sampler.Get(i.ID)
		if !ok || u.Memory <= limit || u.At.Before(i.Started) {
			continue
		}
		if _, busy := d.sampling.memBusy.LoadOrStore(i.ID, struct{}{}); busy {
			continue
		}
		go func(id int, used int64, at time.Time) {
			defer d.sampling.memBusy.Delete(id)
			if err := d.sup.MemoryRestart(id, used, at); err != nil {
				d.log.Error("memory limit: the replacement failed", "id", id, "err", err)
			}
		}(i.ID, u.Memory, u.At)
	}
}
