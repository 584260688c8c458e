package supervisor

import (
	"sync"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/config"
)

// fakeClock is a clock a test moves: After fires once Advance passes its deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	waiting chan struct{} // a signal each time someone waits
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, waiting: make(chan struct{}, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	select {
	case c.waiting <- struct{}{}:
	default:
	}
	return ch
}

// step moves the clock by d and returns once the loop has gone round after it (it waits again).
func (c *fakeClock) step(t *testing.T, d time.Duration) {
	t.Helper()
	for len(c.waiting) > 0 {
		<-c.waiting
	}
	c.Advance(d)
	select {
	case <-c.waiting:
	case <-time.After(wait):
		t.Fatal("the cron loop did not go round")
	}
}

// Advance moves the clock and fires what came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// cron_restart restarts a running fork-mode app when it comes due, and only then; a stopped app
// stays stopped.
func TestCronRestart(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	f := newFixture(t, false, func(o *Options) { o.Clock = clock })
	quit := make(chan struct{})
	defer close(quit)
	go f.sup.RunCron(quit)
	if err := f.sup.Start(spec("job", func(s *config.AppSpec) { s.CronRestart = "0 */5 * * * *" })); err != nil { // every 5 min
		t.Fatal(err)
	}
	p := f.next()
	// Not due yet: 4 minutes on (the loop looks at least once a minute), the same process runs.
	for range 4 {
		clock.step(t, time.Minute)
	}
	if p.Exited() || f.info("job")[0].History.Restarts != 0 {
		t.Fatal("restarted before its time")
	}
	// Due: a restart, counted.
	clock.step(t, time.Minute)
	q := f.next()
	f.eventually("the cron restart counted", func() bool { return f.info("job")[0].History.Restarts == 1 && f.info("job")[0].Pid == q.Pid() })
	if !p.Exited() {
		t.Error("the old process still runs")
	}
	// Stopped: the next time comes and goes, nothing starts.
	if _, err := f.sup.Do(ActStop, "job"); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		clock.step(t, time.Minute)
	}
	if i := f.info("job")[0]; i.Status != Stopped || i.History.Restarts != 1 {
		t.Errorf("a stopped app after its cron time: %s, %d restarts", i.Status, i.History.Restarts)
	}
}
