package config

import (
	"encoding/json"
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// The keys beside what runs and how it restarts: log rotation's, and watch, cron_restart, uid,
// gid, max_memory_restart, pid_file, log_type.

// rotation reads the app's log rotation keys, as `tend set` reads the global ones.
func rotation(k *keys, s *AppSpec) error {
	for _, key := range []string{"max_size", "retain", "compress", "rotate_interval", "rotate_date_format", "rotate_tz"} {
		v, _, ok := k.get(key)
		if !ok {
			continue
		}
		var text string
		switch t := v.(type) {
		case string:
			text = t
		case json.Number:
			text = t.String()
		case bool:
			text = strconv.FormatBool(t)
		default:
			return keyErr(key, "must be a string or a number, got %s", kind(v))
		}
		if _, err := s.Rotate.Set(key, text); err != nil {
			return asKeyErr(key, err)
		}
	}
	return nil
}

// ApplyKeys reads watch, cron_restart, uid, gid, max_memory_restart, pid_file and log_type,
// with the values a config would give them, into s: start's flags for them are checked as the
// config keys are.
func ApplyKeys(s *AppSpec, m map[string]any) error {
	return moreKeys(&keys{m: m, used: map[string]bool{}}, s)
}

// moreKeys reads watch, cron_restart, uid, gid, max_memory_restart, pid_file and log_type.
func moreKeys(k *keys, s *AppSpec) error {
	if v, _, ok := k.get("watch"); ok {
		switch t := v.(type) {
		case bool:
			if t {
				s.Watch = []string{"."}
			}
		default:
			if err := k.list(&s.Watch, "watch"); err != nil {
				return err
			}
		}
	}
	for _, e := range []error{
		k.list(&s.IgnoreWatch, "ignore_watch"), k.duration(&s.WatchDelay, "watch_delay"),
		k.str(&s.CronRestart, "cron_restart", "cron"), k.str(&s.User, "uid", "user"),
		k.str(&s.Group, "gid"), k.str(&s.PidFile, "pid_file", "pid"), k.str(&s.LogType, "log_type"),
	} {
		if e != nil {
			return e
		}
	}
	if s.CronRestart != "" {
		if _, err := cronParser.Parse(s.CronRestart); err != nil {
			return keyErr("cron_restart", "%q is not a cron expression (5 fields, or 6 with seconds first): %v", s.CronRestart, err)
		}
	}
	if s.User != "" && !isDigits(s.User) {
		if _, err := user.Lookup(s.User); err != nil {
			return keyErr("uid", "%q: no such user on this machine", s.User)
		}
	}
	if s.Group != "" && !isDigits(s.Group) {
		if _, err := user.LookupGroup(s.Group); err != nil {
			return keyErr("gid", "%q: no such group on this machine", s.Group)
		}
	}
	switch s.LogType {
	case "", "raw", "json":
	default:
		return keyErr("log_type", "must be json or raw, got %q", s.LogType)
	}
	var mem string
	if err := k.str(&mem, "max_memory_restart"); err != nil || mem == "" {
		return err
	}
	b, err := ParseBytes(mem)
	if err != nil {
		return keyErr("max_memory_restart", "%v", err)
	}
	s.MaxMemoryRestart = b
	return nil
}

// ParseBytes reads PM2's sizes: a number of bytes, or one with K, M or G (powers of 1024).
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for suf, m := range map[string]int64{"K": 1 << 10, "M": 1 << 20, "G": 1 << 30} {
		if rest, ok := strings.CutSuffix(strings.TrimSuffix(t, "B"), suf); ok {
			t, mult = rest, m
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 || n*float64(mult) > 1<<50 {
		return 0, fmt.Errorf("%q must be a size such as 300M, 1G or 512K", s)
	}
	return int64(n * float64(mult)), nil
}
