package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// MetricsSettings are the sampler's cadence and where the daemon serves /metrics (`tend set`).
type MetricsSettings struct {
	// Interval is how often process trees are measured while someone looks (a read of the
	// list, a scrape, a screen in the last minute) or an app has a memory limit (0: 1 s).
	Interval time.Duration `json:"interval,omitempty"`
	// Idle is how often they are measured when nobody looks (0: 30 s).
	Idle time.Duration `json:"idle_interval,omitempty"`
	// Listen is the address the daemon serves Prometheus' /metrics on ("": none).
	Listen string `json:"listen,omitempty"`
}

// Sampling cadence defaults.
const (
	DefaultMetricsInterval = time.Second
	DefaultMetricsIdle     = 30 * time.Second
)

// Effective is m with the defaults where it sets nothing.
func (m MetricsSettings) Effective() MetricsSettings {
	if m.Interval <= 0 {
		m.Interval = DefaultMetricsInterval
	}
	if m.Idle <= 0 {
		m.Idle = DefaultMetricsIdle
	}
	return m
}

// set sets one of the metrics keys to value, checked.
func (m *MetricsSettings) set(key, value string) error {
	switch key {
	case "metrics_interval", "metrics_idle_interval":
		d, err := ParseDuration(value)
		if err != nil || d < 100*time.Millisecond || d > time.Hour {
			return invalidf("%s %q must be a duration from 100ms to 1h (1s, 500ms, 1m)", key, value)
		}
		if key == "metrics_interval" {
			m.Interval = d
		} else {
			m.Idle = d
		}
	case "metrics_listen":
		if v := strings.TrimSpace(value); v == "" || v == "none" {
			m.Listen = ""
			return nil
		}
		if err := CheckListenAddr(value); err != nil {
			return invalidf("metrics_listen: %v", err)
		}
		m.Listen = value
	}
	return nil
}

// CheckListenAddr checks a TCP address to serve on: host:port, or a bare port (all addresses).
func CheckListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (127.0.0.1:9615, :9615)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: the host must be an IP address or localhost", addr)
	}
	return nil
}

// String is the metrics settings in effect, "key: value" a line.
func (m MetricsSettings) String() string {
	e := m.Effective()
	listen := e.Listen
	if listen == "" {
		listen = "none"
	}
	return fmt.Sprintf("metrics_interval: %s\nmetrics_idle_interval: %s\nmetrics_listen: %s\n", e.Interval, e.Idle, listen)
}
