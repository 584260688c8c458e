package supervisor

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/config"
)

func TestDecide(t *testing.T) {
	base := config.Defaults()
	short, long := 10*time.Millisecond, 5*time.Second
	tests := []struct {
		name    string
		edit    func(*config.AppSpec)
		hist    History
		uptime  time.Duration
		code    int
		want    Outcome
		delay   time.Duration
		newHist History
	}{
		{"stable exit restarts at once", nil, History{}, long, 1, Restart, 0, History{}},
		{"unstable exit counts", nil, History{Unstable: 3}, short, 1, Restart, crashLoopFloor, History{Unstable: 4}},
		{"stable run resets the unstable count", nil, History{Unstable: 5}, long, 1, Restart, 0, History{}},
		{"max restarts reached", nil, History{Unstable: 15}, short, 1, Give, config.DefaultErroredRetry, History{Unstable: 16, RetryDelay: config.DefaultErroredRetry}},
		{"errored again: the cooldown doubles", nil, History{Unstable: 15, RetryDelay: 40 * time.Minute}, short, 1, Give, time.Hour, History{Unstable: 16, RetryDelay: time.Hour}},
		{"errored_retry -1 never retries (PM2)", func(s *config.AppSpec) { s.ErroredRetry = -1 }, History{Unstable: 15}, short, 1, Give, 0, History{Unstable: 16}},
		{"no autorestart", func(s *config.AppSpec) { s.Autorestart = false }, History{}, long, 1, Stop, 0, History{}},
		{"stop exit code", func(s *config.AppSpec) { s.StopExitCodes = []int{0, 7} }, History{}, long, 7, Stop, 0, History{}},
		{"other exit code restarts", func(s *config.AppSpec) { s.StopExitCodes = []int{7} }, History{}, long, 8, Restart, 0, History{}},
		{"restart delay", func(s *config.AppSpec) { s.RestartDelay = 2 * time.Second }, History{}, long, 1, Restart, 2 * time.Second, History{}},
		{"backoff starts at its value", func(s *config.AppSpec) { s.ExpBackoffDelay = 100 * time.Millisecond }, History{}, long, 1, Restart,
			100 * time.Millisecond, History{PrevDelay: 100 * time.Millisecond}},
		{"backoff grows by half", func(s *config.AppSpec) { s.ExpBackoffDelay = 100 * time.Millisecond }, History{PrevDelay: 200 * time.Millisecond}, long, 1, Restart,
			300 * time.Millisecond, History{PrevDelay: 300 * time.Millisecond}},
		{"backoff is capped", func(s *config.AppSpec) { s.ExpBackoffDelay = 100 * time.Millisecond }, History{PrevDelay: 14 * time.Second}, long, 1, Restart,
			backoffCap, History{PrevDelay: backoffCap}},
		{"backoff resets after a long run", func(s *config.AppSpec) { s.ExpBackoffDelay = 100 * time.Millisecond }, History{PrevDelay: 9 * time.Second}, time.Minute, 1, Restart,
			100 * time.Millisecond, History{PrevDelay: 100 * time.Millisecond}},
		{"a crash loop never spins", func(s *config.AppSpec) { s.MinUptime = 0 }, History{}, time.Millisecond, 1, Restart, crashLoopFloor, History{}},
		{"max restarts 0 gives up at the first unstable exit", func(s *config.AppSpec) { s.MaxRestarts = 0 }, History{}, short, 1, Give, config.DefaultErroredRetry, History{Unstable: 1, RetryDelay: config.DefaultErroredRetry}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := base
			if tt.edit != nil {
				tt.edit(&spec)
			}
			// Restarts is counted when the restart happens (AutoRestarted), not in Decide.
			d, h := Decide(&spec, tt.hist, tt.uptime, tt.code, time.Now())
			h.Starts = nil // TestStartLimit follows them
			if d.Action != tt.want || d.Delay != tt.delay || !reflect.DeepEqual(h, tt.newHist) {
				t.Fatalf("got %v delay %v hist %+v; want %v delay %v hist %+v", d.Action, d.Delay, h, tt.want, tt.delay, tt.newHist)
			}
		})
	}
}

// A crash storm under load: every run outlives min_uptime (3 s each), so none is unstable and
// PM2's max_restarts never ends it; the start limit does. Past 16 automatic starts within 60 s,
// the delay goes 5 s, 10 s… up to a minute, so 90 s after the storm began starts are at least
// 20 s apart; a run that lasts 60 s ends the backoff.
func TestStartLimit(t *testing.T) {
	spec := config.Defaults()
	var h History
	now := time.Unix(1_000_000, 0)
	begin := now
	var starts []time.Time
	for range 40 {
		uptime := 3 * time.Second
		now = now.Add(uptime) // it ran, then died
		d, next := Decide(&spec, h, uptime, 1, now)
		if d.Action != Restart {
			t.Fatalf("%v after %d starts", d.Action, len(starts))
		}
		h = next
		now = now.Add(d.Delay)
		starts = append(starts, now)
	}
	for i := 1; i < len(starts); i++ {
		if starts[i].Sub(begin) >= 90*time.Second && starts[i].Sub(starts[i-1]) < 20*time.Second {
			t.Fatalf("start %d at %s, %s after the one before: more than one start per 20 s past 90 s",
				i, starts[i].Sub(begin), starts[i].Sub(starts[i-1]))
		}
	}
	if h.LimitDelay != time.Minute {
		t.Fatalf("the backoff is %s after the storm, want the cap (1m)", h.LimitDelay)
	}
	d, h := Decide(&spec, h, time.Minute, 1, now.Add(time.Minute))
	if d.Delay != 0 || d.Limited || h.LimitDelay != 0 {
		t.Fatalf("a run of 60 s ends the backoff: delay %s, limited %v, %+v", d.Delay, d.Limited, h.LimitDelay)
	}
	// start_limit_burst -1: no limit.
	spec.StartLimitBurst = -1
	h = History{}
	for range 40 {
		now = now.Add(3 * time.Second)
		var d Decision
		if d, h = Decide(&spec, h, 3*time.Second, 1, now); d.Delay != 0 {
			t.Fatalf("no limit, yet a delay of %s", d.Delay)
		}
	}
}

func TestTransitions(t *testing.T) {
	valid := []struct {
		from Status
		t    trigger
		to   Status
	}{
		{"", trCreate, Stopped}, {Stopped, trLaunch, Launching}, {Launching, trReady, Online},
		{Online, trStop, Stopping}, {Stopping, trStopped, Stopped}, {Online, trExitRestart, Waiting},
		{Waiting, trLaunch, Launching}, {Online, trGiveUp, Errored}, {Errored, trLaunch, Launching},
		{Waiting, trStopped, Stopped}, {Waiting, trAdopt, Online}, {Stopping, trListenFailed, Errored},
	}
	for _, v := range valid {
		if got, err := next(v.from, v.t); err != nil || got != v.to {
			t.Errorf("%s from %q = %q, %v; want %q", v.t, v.from, got, err, v.to)
		}
	}
	invalid := []struct {
		from Status
		t    trigger
	}{{Stopped, trReady}, {Stopping, trReady}, {Stopped, trStop}, {Errored, trReady}, {Waiting, trReady}, {Online, trAdopt}, {Stopped, trCreate}, {Stopped, trigger(99)}}
	for _, v := range invalid {
		got, err := next(v.from, v.t)
		if !errors.Is(err, ErrInvalidTransition) || got != v.from {
			t.Errorf("%s from %q = %q, %v; want an invalid transition that changes nothing", v.t, v.from, got, err)
		}
	}
	// Every status a trigger leads to can be left again.
	leaves := map[Status]bool{}
	for _, r := range transitions {
		for _, f := range r.from {
			leaves[f] = true
		}
	}
	for tr, r := range transitions {
		if !leaves[r.to] {
			t.Errorf("%s leads to %q, which no trigger leaves", trigger(tr), r.to)
		}
		if r.name == "" {
			t.Errorf("trigger %d has no row", tr)
		}
	}
}
