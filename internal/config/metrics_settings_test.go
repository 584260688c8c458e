package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMetricsSettings(t *testing.T) {
	var s Settings
	if e := s.Metrics.Effective(); e.Interval != time.Second || e.Idle != 30*time.Second || e.Listen != "" {
		t.Fatalf("defaults %+v", e)
	}
	for key, value := range map[string]string{"metrics_interval": "2s", "metrics_idle_interval": "1m", "metrics_listen": "127.0.0.1:9615"} {
		if own, err := s.Set(key, value); err != nil || own != key {
			t.Fatalf("set %s %s: %q %v", key, value, own, err)
		}
	}
	want := "metrics_interval: 2s\nmetrics_idle_interval: 1m0s\nmetrics_listen: 127.0.0.1:9615\n"
	if got := s.Metrics.String(); got != want {
		t.Errorf("String:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range [][2]string{{"metrics_interval", "10ms"}, {"metrics_interval", "2h"}, {"metrics_idle_interval", "soon"},
		{"metrics_listen", "9615"}, {"metrics_listen", "example.com:9615"}, {"metrics_listen", "127.0.0.1:0"}} {
		before := s
		if _, err := s.Set(bad[0], bad[1]); err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("set %s %q: %v", bad[0], bad[1], err)
		}
		if s.Metrics != before.Metrics {
			t.Errorf("a refused %s changed the settings", bad[0])
		}
	}
	for _, key := range []string{"metrics_interval", "metrics_idle_interval", "metrics_listen"} {
		if _, err := s.Unset(key); err != nil {
			t.Fatal(err)
		}
	}
	if s.Metrics != (MetricsSettings{}) {
		t.Errorf("after unset: %+v", s.Metrics)
	}
	if _, err := s.Set("metrics_listen", "none"); err != nil || s.Metrics.Listen != "" {
		t.Errorf("metrics_listen none: %v %q", err, s.Metrics.Listen)
	}
}
