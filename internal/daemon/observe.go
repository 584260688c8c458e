package daemon

import (
	"encoding/json"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/prom"
	"github.com/tend-sh/tend/internal/supervisor"
	"github.com/tend-sh/tend/internal/wire"
)

// How an event stream keeps its connection honest: a blank line when nothing happened for a
// while finds a client that is gone, and a write that takes longer than streamWrite (a client
// that stopped reading) ends the stream.
const (
	streamHeartbeat = 15 * time.Second
	streamWrite     = 10 * time.Second
)

// eventStream sends every event from now on, one JSON object a line, until the client goes or
// the daemon stops.
func (d *daemon) eventStream(w wire.ResponseWriter, r *wire.Request) {
	sub := d.events.Subscribe()
	defer sub.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher, _ := w.(wire.Flusher)
	deadliner, _ := w.(wire.Deadliner)
	if flusher == nil || deadliner == nil {
		writeErr(w, "internal", "this connection cannot stream")
		return
	}
	flusher.Flush()
	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	quit := d.quit()
	for {
		var line []byte
		select {
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			line, _ = json.Marshal(e)
			line = append(line, '\n')
		case <-beat.C:
			line = []byte("\n")
		case <-quit:
			return
		}
		_ = deadliner.SetWriteDeadline(time.Now().Add(streamWrite))
		if _, err := w.Write(line); err != nil {
			return
		}
	}
}

// statuses are the statuses tend_process_status has a series for, each 1 when the instance is
// in it.
var statuses = []supervisor.Status{supervisor.Launching, supervisor.Online, supervisor.Stopping,
	supervisor.Stopped, supervisor.Errored, supervisor.Waiting}

// metricsText is the whole exposition: per instance, its tree's figures, its counters and its
// custom metrics; then the daemon's own figures.
func (d *daemon) metricsText() []byte {
	d.looked()
	infos := d.sup.List()
	var w prom.Writer
	labels := func(i *supervisor.Info) []string {
		return []string{"app", i.Name, "namespace", i.Spec.Namespace, "instance", strconv.Itoa(i.Index), "id", strconv.Itoa(i.ID)}
	}
	each := func(name, typ, help string, value func(i *supervisor.Info) (float64, bool)) {
		w.Family(name, typ, help)
		for _, i := range infos {
			if v, ok := value(i); ok {
				w.Sample(name, v, labels(i)...)
			}
		}
	}
	now := time.Now()
	each("tend_process_cpu_seconds_total", "counter", "CPU time used by the instance's process tree while tend sampled it.",
		func(i *supervisor.Info) (float64, bool) { return d.usage(i).CPUSeconds, true })
	each("tend_process_cpu_percent", "gauge", "CPU use of the instance's process tree over the last sample interval, in percent of one CPU.",
		func(i *supervisor.Info) (float64, bool) { return d.usage(i).CPU, i.Pid > 0 })
	each("tend_process_memory_bytes", "gauge", "Resident memory of the instance's process tree.",
		func(i *supervisor.Info) (float64, bool) { return float64(d.usage(i).Memory), i.Pid > 0 })
	each("tend_process_processes", "gauge", "Processes in the instance's tree (its group and the descendants that left it).",
		func(i *supervisor.Info) (float64, bool) { return float64(d.usage(i).Procs), i.Pid > 0 })
	each("tend_process_restarts_total", "counter", "Restarts of the instance (PM2's restart_time).",
		func(i *supervisor.Info) (float64, bool) { return float64(i.History.Restarts), true })
	each("tend_process_memory_restarts_total", "counter", "Replacements of the instance's process because its tree passed max_memory_restart.",
		func(i *supervisor.Info) (float64, bool) { return float64(i.History.MemoryRestarts), true })
	each("tend_process_memory_limit_bytes", "gauge", "The instance's max_memory_restart.",
		func(i *supervisor.Info) (float64, bool) {
			return float64(i.Spec.MaxMemoryRestart), i.Spec.MaxMemoryRestart > 0
		})
	each("tend_process_uptime_seconds", "gauge", "Time since the instance's process started.",
		func(i *supervisor.Info) (float64, bool) {
			return now.Sub(i.Started).Seconds(), i.Pid > 0 && !i.Started.IsZero()
		})
	w.Family("tend_process_status", "gauge", "1 for the status the instance is in, 0 for the others.")
	for _, i := range infos {
		for _, s := range statuses {
			v := 0.0
			if i.Status == s {
				v = 1
			}
			w.Sample("tend_process_status", v, append(labels(i), "status", string(s))...)
		}
	}
	w.Family("tend_log_lines_total", "counter", "Lines the instance wrote to stdout or stderr.")
	for _, i := range infos {
		for s, name := range []string{"stdout", "stderr"} {
			if i.Logs != nil {
				w.Sample("tend_log_lines_total", float64(i.Logs.Lines[s].Load()), append(labels(i), "stream", name)...)
			}
		}
	}
	w.Family("tend_log_dropped_lines_total", "counter", "Lines the instance's log files could not take (a full disk).")
	for _, i := range infos {
		for s, name := range []string{"stdout", "stderr"} {
			if i.Logs != nil {
				w.Sample("tend_log_dropped_lines_total", float64(i.Logs.Dropped[s].Load()), append(labels(i), "stream", name)...)
			}
		}
	}
	w.Family("tend_app_metric", "gauge", "A custom metric the app reported (tend:metric, or @pm2/io's axm:monitor), by name.")
	var dropped float64
	for _, i := range infos {
		vals, drop := i.Custom.Snapshot()
		dropped += float64(drop)
		for _, name := range slices.Sorted(maps.Keys(vals)) {
			if v, ok := vals[name].Number(); ok {
				w.Sample("tend_app_metric", v, append(labels(i), "name", name, "unit", vals[name].Unit)...)
			}
		}
	}
	w.Family("tend_app_metrics_dropped_total", "counter", "Custom metric messages tend refused: malformed, too long, or past 200 names per instance.")
	w.Sample("tend_app_metrics_dropped_total", dropped)
	d.daemonFigures(&w)
	return w.Bytes()
}

// daemonFigures are the daemon's own: its CPU and memory, and what sampling costs.
func (d *daemon) daemonFigures(w *prom.Writer) {
	if st, err := proc.ReadStat(os.Getpid()); err == nil {
		w.Family("tend_daemon_cpu_seconds_total", "counter", "CPU time the daemon used.")
		w.Sample("tend_daemon_cpu_seconds_total", float64(st.CPUTicks)/proc.ClockTicks)
		w.Family("tend_daemon_memory_bytes", "gauge", "The daemon's resident memory.")
		w.Sample("tend_daemon_memory_bytes", float64(st.RSSPages*proc.PageSize))
	}
	w.Family("tend_daemon_goroutines", "gauge", "Goroutines in the daemon: what grows with the processes it runs.")
	w.Sample("tend_daemon_goroutines", float64(runtime.NumGoroutine()))
	c := d.sampler.Cost()
	w.Family("tend_daemon_samples_total", "counter", "Samples of the process trees taken.")
	w.Sample("tend_daemon_samples_total", float64(c.Samples))
	w.Family("tend_daemon_sample_seconds_total", "counter", "Wall time spent sampling the process trees.")
	w.Sample("tend_daemon_sample_seconds_total", c.Seconds)
	w.Family("tend_daemon_sampled_processes", "gauge", "Processes read at the last sample (every process on the machine).")
	w.Sample("tend_daemon_sampled_processes", float64(c.Procs))
	w.Family("tend_daemon_events_lost_total", "counter", "Events listeners missed because they fell behind.")
	w.Sample("tend_daemon_events_lost_total", float64(d.events.Lost()))
}

// metrics answers a scrape.
func (d *daemon) metrics(w wire.ResponseWriter, r *wire.Request) {
	w.Header().Set("Content-Type", prom.ContentType)
	_, _ = w.Write(d.metricsText())
}
