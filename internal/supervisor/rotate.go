package supervisor

import (
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/logs"
)

// SetRotate makes global the settings under every app's own rotation keys, and applies them to
// the files open now.
func (s *Supervisor) SetRotate(global config.RotateSettings) {
	s.rmu.Lock()
	s.rotate = global
	s.rmu.Unlock()
	s.mu.Lock()
	var all []*Instance
	for _, a := range s.apps {
		all = append(all, a.instances...)
	}
	s.mu.Unlock()
	for _, in := range all {
		_ = in.do(command{kind: cmdRotation})
	}
}

// SetSecretWords makes words (nil: the defaults) the ones that mask arguments in tend.log.
func (s *Supervisor) SetSecretWords(words []string) {
	s.rmu.Lock()
	s.secretWords = words
	s.rmu.Unlock()
}

func (s *Supervisor) secrets() []string {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.secretWords
}

// Rotation is the log rotation of an app's files: its own keys, over the global settings, over
// tend's defaults. The keys were checked when they were set; one that no longer reads (a time
// zone gone from the system) is left out, and said.
func (s *Supervisor) Rotation(spec *config.AppSpec) logs.Rotation {
	s.rmu.Lock()
	global := s.rotate
	s.rmu.Unlock()
	warn := func(string, ...any) {}
	if s.log != nil {
		warn = s.log.Warn
	}
	return LogsRotation(spec.Rotate.Over(global).Over(config.DefaultRotate), warn)
}

// LogsRotation turns rotation settings into what logs.File takes; warn hears of a value that
// does not read.
func LogsRotation(r config.RotateSettings, warn func(msg string, args ...any)) logs.Rotation {
	out := logs.Rotation{MaxSize: *r.MaxSize, Retain: *r.Retain, Compress: *r.Compress}
	if *r.TZ != "" {
		if loc, err := time.LoadLocation(*r.TZ); err == nil {
			out.Location = loc
		} else {
			warn("rotate_tz does not read; local time is used", "rotate_tz", *r.TZ, "err", err)
		}
	}
	if d, err := logs.ParseDateFormat(*r.DateFormat); err == nil {
		out.Date = d
	} else {
		warn("rotate_date_format does not read; the default is used", "rotate_date_format", *r.DateFormat, "err", err)
	}
	if *r.Interval != "" {
		if sched, err := config.CronSchedule(*r.Interval, out.Location); err == nil {
			out.Interval = sched
		} else {
			warn("rotate_interval does not read; no rotation by time", "rotate_interval", *r.Interval, "err", err)
		}
	}
	return out
}
