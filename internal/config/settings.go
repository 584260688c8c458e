package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RotateSettings are the keys of log rotation: an app's (in its config; unset ones come from the
// global settings) or the global ones (`tend set`; unset ones come from DefaultRotate).
type RotateSettings struct {
	MaxSize    *int64  `json:"max_size,omitempty"`           // bytes; 0: never by size
	Retain     *int    `json:"retain,omitempty"`             // rotated files kept; 0: none (pm2-logrotate's 0); -1: all
	Compress   *bool   `json:"compress,omitempty"`           // gzip rotated files
	Interval   *string `json:"rotate_interval,omitempty"`    // a cron expression; "": never by time
	DateFormat *string `json:"rotate_date_format,omitempty"` // the date in rotated names
	TZ         *string `json:"rotate_tz,omitempty"`          // the zone of that date and of the cron ("": local)
}

// DefaultRotate is tend's rotation when nothing is set: pm2-logrotate's sizes (10 MB, 30 files
// kept), no gzip, no rotation by time. Logs are bounded out of the box, where PM2's grow until
// pm2-logrotate is installed.
var DefaultRotate = RotateSettings{
	MaxSize: ptr(int64(10 << 20)), Retain: ptr(30), Compress: ptr(false), Interval: ptr(""),
	DateFormat: ptr("YYYY-MM-DD_HH-mm-ss"), TZ: ptr(""),
}

func ptr[T any](v T) *T { return &v }

// Over is r with base's value wherever r has none.
func (r RotateSettings) Over(base RotateSettings) RotateSettings {
	orBase(&r.MaxSize, base.MaxSize)
	orBase(&r.Retain, base.Retain)
	orBase(&r.Compress, base.Compress)
	orBase(&r.Interval, base.Interval)
	orBase(&r.DateFormat, base.DateFormat)
	orBase(&r.TZ, base.TZ)
	return r
}

// orBase sets *p to base when it is unset.
func orBase[T any](p **T, base *T) {
	if *p == nil {
		*p = base
	}
}

// settingKeys are `tend set`'s keys: tend's own, and pm2-logrotate's as PM2 users type them
// (`pm2 set pm2-logrotate:max_size 10M`), mapped to tend's; "" marks one accepted with no effect
// (tend checks sizes at every write, and has no modules).
var settingKeys = map[string]string{
	"max_size": "max_size", "retain": "retain", "compress": "compress",
	"rotate_interval": "rotate_interval", "rotate_date_format": "rotate_date_format", "rotate_tz": "rotate_tz",
	"pm2-logrotate:max_size": "max_size", "pm2-logrotate:retain": "retain", "pm2-logrotate:compress": "compress",
	"pm2-logrotate:rotateInterval": "rotate_interval", "pm2-logrotate:dateFormat": "rotate_date_format",
	"pm2-logrotate:TZ": "rotate_tz", "pm2-logrotate:workerInterval": "", "pm2-logrotate:rotateModule": "",
	"secret_keys":      "secret_keys", // not rotation's: Settings.Set takes it
	"metrics_interval": "metrics_interval", "metrics_idle_interval": "metrics_idle_interval", "metrics_listen": "metrics_listen",
}

// SettingKeys lists `tend set`'s keys, tend's own first.
func SettingKeys() []string {
	var own, pm2 []string
	for k := range settingKeys {
		if strings.Contains(k, ":") {
			pm2 = append(pm2, k)
		} else {
			own = append(own, k)
		}
	}
	slices.Sort(own)
	slices.Sort(pm2)
	return append(own, pm2...)
}

// Settings are what `tend set` changes for every app: log rotation, and the words that make a
// variable a secret (nil: DefaultSecretWords).
type Settings struct {
	Rotate     RotateSettings  `json:"rotate"`
	SecretKeys []string        `json:"secret_keys,omitempty"`
	Metrics    MetricsSettings `json:"metrics,omitzero"`
}

// SettingName is tend's name of a `tend set` key (tend's or pm2-logrotate's): "" for one
// accepted with no effect; false for an unknown one.
func SettingName(key string) (string, bool) {
	own, ok := settingKeys[key]
	return own, ok
}

// SecretWords are the words in effect.
func (s Settings) SecretWords() []string {
	if s.SecretKeys == nil {
		return DefaultSecretWords
	}
	return s.SecretKeys
}

// Set sets key to value: secret_keys (+WORD adds to the words in effect), or a rotation key. It
// returns tend's name of the key, or "" for a key accepted with no effect.
func (s *Settings) Set(key, value string) (string, error) {
	if strings.HasPrefix(key, "metrics_") {
		if _, ok := settingKeys[key]; ok {
			return key, s.Metrics.set(key, value)
		}
	}
	if key != "secret_keys" {
		return s.Rotate.Set(key, value)
	}
	words, err := ParseSecretWords(strings.TrimPrefix(value, "+"))
	if err != nil {
		return key, err
	}
	if strings.HasPrefix(value, "+") {
		words = slices.Concat(s.SecretWords(), words)
	}
	s.SecretKeys = words
	return key, nil
}

// Unset removes key, so that its default holds again.
func (s *Settings) Unset(key string) (string, error) {
	switch key {
	case "secret_keys":
		s.SecretKeys = nil
		return key, nil
	case "metrics_interval":
		s.Metrics.Interval = 0
		return key, nil
	case "metrics_idle_interval":
		s.Metrics.Idle = 0
		return key, nil
	case "metrics_listen":
		s.Metrics.Listen = ""
		return key, nil
	}
	return s.Rotate.Unset(key)
}

// Set sets key (tend's or pm2-logrotate's name) to value in r, checked as the config key is. It
// returns tend's name of the key, or "" for a key accepted with no effect.
func (r *RotateSettings) Set(key, value string) (string, error) {
	own, ok := settingKeys[key]
	if !ok {
		return "", invalidf("unknown setting %q; the settings are: %s", key, strings.Join(SettingKeys(), ", "))
	}
	var err error
	switch own {
	case "":
	case "max_size":
		var n int64
		if strings.TrimSpace(value) != "0" {
			if n, err = ParseBytes(value); err != nil {
				return own, invalidf("max_size: %v (or 0: never by size)", err)
			}
		}
		r.MaxSize = &n
	case "retain":
		n := -1
		if v := strings.TrimSpace(value); v != "all" {
			if n, err = strconv.Atoi(v); err != nil || n < 0 {
				return own, invalidf("retain %q must be a number of files ≥ 0 (0: none kept), or all", value)
			}
		}
		r.Retain = &n
	case "compress":
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return own, invalidf("compress %q must be true or false", value)
		}
		r.Compress = &b
	case "rotate_interval":
		v, err := RotateInterval(value)
		if err != nil {
			return own, err
		}
		r.Interval = &v
	case "rotate_date_format":
		if strings.TrimSpace(value) == "" || strings.ContainsAny(value, "/\x00") {
			return own, invalidf("rotate_date_format %q must name a date without '/'", value)
		}
		r.DateFormat = &value
	case "rotate_tz":
		if _, err := time.LoadLocation(value); err != nil {
			return own, invalidf("rotate_tz %q is not a time zone (e.g. UTC, Europe/Paris)", value)
		}
		r.TZ = &value
	}
	return own, nil
}

// Unset removes key (tend's or pm2-logrotate's name) from r, so that its default holds again.
func (r *RotateSettings) Unset(key string) (string, error) {
	own, ok := settingKeys[key]
	if !ok {
		return "", invalidf("unknown setting %q; the settings are: %s", key, strings.Join(SettingKeys(), ", "))
	}
	switch own {
	case "max_size":
		r.MaxSize = nil
	case "retain":
		r.Retain = nil
	case "compress":
		r.Compress = nil
	case "rotate_interval":
		r.Interval = nil
	case "rotate_date_format":
		r.DateFormat = nil
	case "rotate_tz":
		r.TZ = nil
	}
	return own, nil
}

// RotateInterval checks a rotate_interval: a cron expression (five fields, or six with seconds),
// daily, hourly, weekly, or none.
func RotateInterval(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "", "none", "0", "false":
		return "", nil
	case "daily", "hourly", "weekly", "monthly":
		v = "@" + v
	}
	if _, err := cronParser.Parse(v); err != nil {
		return "", invalidf("rotate_interval %q is not a cron expression (5 fields, or 6 with seconds first), daily, hourly or weekly: %v", v, err)
	}
	return v, nil
}

// CronSchedule is the schedule of a checked cron expression (RotateInterval's, cron_restart's).
func CronSchedule(expr string, loc *time.Location) (interface{ Next(time.Time) time.Time }, error) {
	if loc != nil && loc != time.Local {
		expr = "CRON_TZ=" + loc.String() + " " + expr
	}
	return cronParser.Parse(expr)
}

// String renders the settings as `tend get` shows them, one key a line.
func (r RotateSettings) String() string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, v) }
	if r.MaxSize != nil {
		line("max_size", FormatBytes(*r.MaxSize))
	}
	if r.Retain != nil {
		v := strconv.Itoa(*r.Retain)
		if *r.Retain < 0 {
			v = "all"
		}
		line("retain", v)
	}
	if r.Compress != nil {
		line("compress", strconv.FormatBool(*r.Compress))
	}
	if r.Interval != nil {
		v := *r.Interval
		if v == "" {
			v = "none"
		}
		line("rotate_interval", v)
	}
	if r.DateFormat != nil {
		line("rotate_date_format", *r.DateFormat)
	}
	if r.TZ != nil {
		v := *r.TZ
		if v == "" {
			v = "local"
		}
		line("rotate_tz", v)
	}
	return b.String()
}

// FormatBytes writes a size as ParseBytes reads it: 10M, 512K, 1G, or bytes.
func FormatBytes(n int64) string {
	switch {
	case n == 0:
		return "0"
	case n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "G"
	case n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "M"
	case n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "K"
	}
	return strconv.FormatInt(n, 10)
}
