package supervisor

import (
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on what one instance may report as custom metrics: past them a metric is dropped,
// counted, and said once in tend.log.
const (
	maxMetrics     = 200 // names per instance
	maxMetricName  = 200 // bytes
	maxMetricValue = 200 // bytes of a string value
)

// Metric is one custom metric an app reported: a number, or a string as PM2's @pm2/io sends
// some ('10.5'), with its unit.
type Metric struct {
	Value any    `json:"value"` // float64 or string
	Unit  string `json:"unit,omitempty"`
	At    time.Time
}

// Number is the metric's value as a number, if it is one (a string such as "10.5" counts).
func (m Metric) Number() (float64, bool) {
	switch v := m.Value.(type) {
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

// CustomMetrics are an instance's custom metrics, shared by every snapshot of it (like
// LogHealth): written by its IPC reader, read by jlist, describe and /metrics.
type CustomMetrics struct {
	mu      sync.Mutex
	vals    map[string]Metric
	dropped int64 // metrics refused: malformed, too long, or past maxMetrics
	said    bool  // the cap was said in tend.log
	gen     atomic.Uint64
}

// Gen changes whenever the metrics or the count of dropped ones do: a reader that kept what it
// made of them knows when to make it again.
func (c *CustomMetrics) Gen() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// Snapshot is a copy of the metrics, and how many were dropped.
func (c *CustomMetrics) Snapshot() (map[string]Metric, int64) {
	if c == nil {
		return nil, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.vals), c.dropped
}

// Names are the metrics' names, sorted.
func (c *CustomMetrics) Names() []string {
	m, _ := c.Snapshot()
	return slices.Sorted(maps.Keys(m))
}

// clear forgets the metrics of a process that is gone (a new one reports its own).
func (c *CustomMetrics) clear() {
	c.mu.Lock()
	c.vals = nil
	c.gen.Add(1)
	c.mu.Unlock()
}

// set records one metric, or counts it as dropped.
func (c *CustomMetrics) set(name string, raw json.RawMessage, unit string, log *slog.Logger) {
	var v any
	if len(name) == 0 || len(name) > maxMetricName || len(unit) > maxMetricName || json.Unmarshal(raw, &v) != nil {
		c.drop()
		return
	}
	switch t := v.(type) {
	case float64, bool:
	case string:
		if len(t) > maxMetricValue {
			c.drop()
			return
		}
	default:
		c.drop() // objects, lists, null: not a figure
		return
	}
	if b, ok := v.(bool); ok {
		v = 0.0
		if b {
			v = 1.0
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if _, ok := c.vals[name]; !ok && len(c.vals) >= maxMetrics {
		c.dropped++
		if !c.said {
			c.said = true
			log.Warn("custom metrics: this instance reports more names than tend keeps; the new ones are dropped and counted", "max", maxMetrics)
		}
		return
	}
	if c.vals == nil {
		c.vals = map[string]Metric{}
	}
	c.vals[name] = Metric{Value: v, Unit: unit, At: time.Now()}
}

func (c *CustomMetrics) drop() {
	c.mu.Lock()
	c.dropped++
	c.gen.Add(1)
	c.mu.Unlock()
}

// customMetric takes a metric message: tend's {type: 'tend:metric', name, value, unit}, or
// @pm2/io's {type: 'axm:monitor', data: {name: {value, unit…}…}}, so that apps written for PM2
// show their metrics unchanged. It reports whether raw was one.
func (in *Instance) customMetric(kind string, raw json.RawMessage, log *slog.Logger) bool {
	c := in.custom
	switch kind {
	case "tend:metric":
		var m struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
			Unit  string          `json:"unit"`
		}
		if json.Unmarshal(raw, &m) != nil {
			c.drop()
			return true
		}
		c.set(m.Name, m.Value, m.Unit, log)
	case "axm:monitor":
		var m struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if json.Unmarshal(raw, &m) != nil {
			c.drop()
			return true
		}
		for name, body := range m.Data {
			var one struct {
				Value json.RawMessage `json:"value"`
				Unit  string          `json:"unit"`
			}
			if json.Unmarshal(body, &one) != nil {
				c.drop()
				continue
			}
			c.set(name, one.Value, one.Unit, log)
		}
	default:
		return false
	}
	return true
}
