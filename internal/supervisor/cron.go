package supervisor

import (
	"errors"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/events"
)

// Clock is the time the supervisor's schedules (cron_restart) run on: the real one, or a test's.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// cronCheckAtLeast is how often RunCron looks at the apps even when nothing is due: a new app
// or a changed cron_restart is seen within it, or at once when Respec or Start wakes it.
const cronCheckAtLeast = time.Minute

// RunCron restarts each app with cron_restart when its expression comes due, until quit: a
// reload in cluster mode (no request fails), a restart in fork mode, as PM2 does. Only the
// instances that run are restarted: an app someone stopped stays stopped. A time that passed
// while the daemon was down is not made up for.
func (s *Supervisor) RunCron(quit <-chan struct{}) {
	type key struct {
		a    *App
		expr string
	}
	since := map[key]time.Time{}
	for {
		now := s.clock.Now()
		wait := cronCheckAtLeast
		seen := map[key]bool{}
		for _, c := range s.cronApps() {
			a, sp := c.a, c.spec
			sched, err := config.CronSchedule(sp.CronRestart, nil)
			if err != nil {
				continue // checked when the app was added; a registry edited by hand is ignored
			}
			k := key{a, sp.CronRestart}
			seen[k] = true
			from, ok := since[k]
			if !ok {
				from = now // counted from when the schedule was first seen
			}
			if next := sched.Next(from); !next.After(now) {
				go s.replaceRunning(a, sp, "cron", sp.CronRestart)
				from = now
			}
			since[k] = from
			wait = min(wait, sched.Next(now).Sub(now))
		}
		for k := range since {
			if !seen[k] {
				delete(since, k)
			}
		}
		select {
		case <-s.clock.After(max(wait, time.Millisecond)):
		case <-s.cronWake:
		case <-quit:
			return
		}
	}
}

// cronApp is an app with a cron_restart, and its spec.
type cronApp struct {
	a    *App
	spec *config.AppSpec
}

// cronApps are the apps with a cron_restart.
func (s *Supervisor) cronApps() []cronApp {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cronApp
	for _, a := range s.apps {
		if len(a.instances) > 0 {
			if sp := a.instances[0].Info().Spec; sp.CronRestart != "" {
				out = append(out, cronApp{a, sp})
			}
		}
	}
	return out
}

// replaceRunning replaces the running processes of the app (a reload in cluster mode, so that
// no request fails), said in tend.log and as a why event: cron (detail: the expression) or watch
// (detail: the path that changed).
func (s *Supervisor) replaceRunning(a *App, sp *config.AppSpec, why, detail string) {
	s.mu.Lock()
	var running []*Instance
	for _, in := range a.instances {
		if i := in.Info(); i.Pid > 0 && i.Status == Online {
			running = append(running, in)
		}
	}
	s.mu.Unlock()
	if len(running) == 0 {
		return
	}
	how := cmdRestart
	word := "restart"
	if sp.ExecMode == config.ClusterMode {
		how, word = cmdReload, "reload"
	}
	s.log.Info(why+": "+word, "app", sp.Name, "because", detail)
	for _, in := range running {
		in.emit(events.Event{Kind: why, Reason: word, Message: detail})
		// One at a time in cluster mode: the others serve meanwhile.
		err := in.do(command{kind: how})
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrClosing) || errors.Is(err, errInterrupted) {
			return // stopped or deleted meanwhile, or the daemon is stopping
		}
		if err != nil {
			s.log.Error(why+": the "+word+" failed", "app", sp.Name, "instance", in.id, "err", err)
		}
	}
}

// wakeCron makes RunCron look at the apps now (an app was added or changed).
func (s *Supervisor) wakeCron() {
	select {
	case s.cronWake <- struct{}{}:
	default:
	}
}
