package supervisor

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/proc/proctest"
	"github.com/tend-sh/tend/internal/testutil"
)

// These tests drive the supervisor against proctest's fake spawner: no process runs, the test
// plays each one, and they take milliseconds.

const wait = 5 * time.Second

type fixture struct {
	t    *testing.T
	sup  *Supervisor
	fake *proctest.Spawner
	log  *testutil.SyncBuffer
	home string
}

func newFixture(t *testing.T, adopt bool, opts ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, fake: proctest.New(), log: &testutil.SyncBuffer{}, home: t.TempDir()}
	o := Options{
		Home: f.home, Spawner: f.fake, Adopt: adopt,
		Log: slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, opt := range opts {
		opt(&o)
	}
	f.sup = New(o)
	t.Cleanup(func() {
		if err := f.sup.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if n := f.fake.Running(); n != 0 {
			t.Errorf("%d fake processes still running after shutdown", n)
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", f.log.String())
		}
	})
	return f
}

// spec is a fork-mode app with quick timings.
func spec(name string, mut ...func(*config.AppSpec)) config.AppSpec {
	s := config.Defaults()
	s.Name, s.Script, s.Cwd, s.InterpreterLabel = name, "/bin/app", "/", "none"
	s.Env = map[string]string{"FROM_SPEC": "1"}
	s.KillTimeout = 300 * time.Millisecond
	s.MinUptime = 0
	for _, m := range mut {
		m(&s)
	}
	return s
}

// eventually waits for cond, failing the test with what after the deadline.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *fixture) next() *proctest.Proc {
	f.t.Helper()
	p, err := f.fake.Next(wait)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) info(target string) []*Info {
	f.t.Helper()
	ins, err := f.sup.Select(target)
	if err != nil {
		f.t.Fatal(err)
	}
	out := make([]*Info, len(ins))
	for i, in := range ins {
		out[i] = in.Info()
	}
	return out
}

func (f *fixture) status(target string, want Status) func() bool {
	return func() bool {
		for _, i := range f.info(target) {
			if i.Status != want {
				return false
			}
		}
		return true
	}
}

// startAsync starts an app whose start answers only later (readiness), returning its error.
func (f *fixture) startAsync(s config.AppSpec) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.sup.Start(s) }()
	return done
}

func recv(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(wait):
		t.Fatal("no answer")
		return nil
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func logPath(f *fixture, name string) string {
	return filepath.Join(f.home, "logs", name)
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
