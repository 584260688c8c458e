package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/state"
	"github.com/tend-sh/tend/internal/testutil"
)

// testIO is IOStreams on buffers, stdout not a terminal (cli/cli's iostreams.Test).
func testIO() (*IOStreams, *bytes.Buffer, *syncBuffer, *syncBuffer) {
	in, out, errOut := &bytes.Buffer{}, &syncBuffer{}, &syncBuffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// syncBuffer is a buffer that goroutines (logs' followers) may write while a test reads.
type syncBuffer = testutil.SyncBuffer

// fakeClient is client.API without a daemon: it answers from procs and records every call.
type fakeClient struct {
	mu       sync.Mutex
	running  bool
	procs    []api.Process
	raw      []byte
	ids      []int
	errs     map[string]error // by call, e.g. "List", "Action stop nope", "Kill"
	calls    []string
	starts   []api.StartRequest
	revived  []state.Registry
	settings config.RotateSettings
	specs    []config.AppSpec
	events   string // what Events streams
	metrics  string // what Metrics answers
}

var _ client.API = (*fakeClient)(nil)

func (c *fakeClient) call(name string, args ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.callLocked(name, args...)
}

func (c *fakeClient) callLocked(name string, args ...any) error {
	line := name
	for _, a := range args {
		line += " " + fmt.Sprint(a)
	}
	c.calls = append(c.calls, line)
	if err := c.errs[line]; err != nil {
		return err
	}
	return c.errs[name]
}

func (c *fakeClient) Calls() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.calls, "; ")
}

func (c *fakeClient) Running() bool { return c.running }

func (c *fakeClient) Ping() (api.Ping, error) {
	return api.Ping{Pid: 42, Version: "1.2.3", Home: "/h"}, c.call("Ping")
}

// Specs are the fake's specs.
func (c *fakeClient) Specs() ([]config.AppSpec, error) { return c.specs, c.call("Specs") }

// Rows is List, recorded as List: the fake's processes are small either way.
func (c *fakeClient) Rows() ([]api.Process, error) { return c.List() }

func (c *fakeClient) List() ([]api.Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.callLocked("List"); err != nil {
		return nil, err
	}
	return c.procs, nil // read with the call recorded: a test that sees the call sees what it got
}

func (c *fakeClient) JlistRaw() ([]byte, error) { return c.raw, c.call("JlistRaw") }

func (c *fakeClient) Start(req api.StartRequest) error {
	var names []string
	for _, a := range req.Apps {
		names = append(names, a.Name)
	}
	c.mu.Lock()
	c.starts = append(c.starts, req)
	c.mu.Unlock()
	return c.call("Start", strings.Join(names, ","), req.Mode)
}

func (c *fakeClient) Action(verb, target string) error { return c.call("Action", verb, target) }
func (c *fakeClient) Change(verb string, req api.TargetRequest) error {
	if req.Env != nil {
		return c.call("UpdateEnv", verb, req.Target, req.Env["TEND_TEST"])
	}
	if req.ToggleWatch {
		return c.call("Change", verb, req.Target, "toggle-watch", settingsString(req.Settings))
	}
	return c.call("Change", verb, req.Target, settingsString(req.Settings))
}
func (c *fakeClient) Scale(name string, n int) error  { return c.call("Scale", name, n) }
func (c *fakeClient) Signal(target, sig string) error { return c.call("Signal", target, sig) }
func (c *fakeClient) Kill() error                     { return c.call("Kill") }
func (c *fakeClient) Save(force bool) (api.SaveResult, error) {
	return api.SaveResult{Path: "/h/dump.pm2", Count: len(c.procs), Backup: "/h/dump.pm2.bak"}, c.call("Save", fmt.Sprint(force))
}
func (c *fakeClient) Settings() (api.Settings, error) {
	return c.settingsAnswer(""), c.call("Settings")
}
func (c *fakeClient) Set(req api.SettingRequest) (api.Settings, error) {
	if err := c.call("Set", req.Key, req.Value, req.Unset); err != nil {
		return api.Settings{}, err
	}
	key, err := c.settings.Set(req.Key, req.Value)
	if req.Unset {
		key, err = c.settings.Unset(req.Key)
	}
	return c.settingsAnswer(key), err
}
func (c *fakeClient) settingsAnswer(key string) api.Settings {
	return api.Settings{Set: c.settings, Effective: c.settings.Over(config.DefaultRotate), Key: key}
}
func (c *fakeClient) ReloadLogs() error { return c.call("ReloadLogs") }
func (c *fakeClient) Events() (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(c.events)), c.call("Events")
}
func (c *fakeClient) Metrics() ([]byte, error) { return []byte(c.metrics), c.call("Metrics") }
func (c *fakeClient) Resurrect(reg state.Registry) (api.ResurrectResult, error) {
	c.mu.Lock()
	c.revived = append(c.revived, reg)
	c.mu.Unlock()
	var names []string
	for _, a := range reg.Apps {
		names = append(names, a.Spec.Name)
	}
	return api.ResurrectResult{IDs: []int{0, 1}}, c.call("Resurrect", strings.Join(names, ","))
}
func (c *fakeClient) Update(exe string) (api.Ping, error) {
	return api.Ping{Version: "9.9.9", Pid: 43}, c.call("Update " + exe)
}

func (c *fakeClient) Message(target string, msg json.RawMessage) (api.ActionResult, error) {
	return api.ActionResult{IDs: c.ids}, c.call("Message", target, string(msg))
}

func (c *fakeClient) Stdin(target, line string) (api.ActionResult, error) {
	return api.ActionResult{IDs: c.ids}, c.call("Stdin", target, line)
}

// fixture is three processes: api (ids 0 and 1, online) and worker (id 2, errored, namespace
// jobs), with no uptime so that tables do not depend on the clock.
func fixture() []api.Process {
	var ps []api.Process
	for i, n := range []string{"api", "api", "worker"} {
		p := api.Process{Pid: 100 + i, Name: n, PmID: i}
		p.Pm2Env.Name, p.Pm2Env.PmID = n, i
		p.Pm2Env.Status = "online"
		p.Pm2Env.Namespace = "default"
		p.Pm2Env.ExecMode = "fork_mode"
		p.Monit = api.Monit{Memory: 42 << 20, CPU: 1.5}
		ps = append(ps, p)
	}
	ps[1].Pm2Env.ExecMode = "cluster_mode"
	ps[1].Pm2Env.RestartTime = 3
	ps[2].Pm2Env.Namespace = "jobs"
	ps[2].Pm2Env.Status = "errored"
	ps[2].Pid = 0
	ps[2].Monit = api.Monit{}
	return ps
}

const fixtureTable = `┌────┬────────┬─────────┬─────┬─────────┬───┬────────┬──────┬────────┐
│ id │ name   │ mode    │ pid │ status  │ ↺ │ uptime │ cpu  │ mem    │
├────┼────────┼─────────┼─────┼─────────┼───┼────────┼──────┼────────┤
│ 0  │ api    │ fork    │ 100 │ online  │ 0 │ 0      │ 1.5% │ 42.0mb │
│ 1  │ api    │ cluster │ 101 │ online  │ 3 │ 0      │ 1.5% │ 42.0mb │
│ 2  │ worker │ fork    │ 0   │ errored │ 0 │ 0      │ 0%   │ 0b     │
└────┴────────┴─────────┴─────┴─────────┴───┴────────┴──────┴────────┘
`

type testEnv struct {
	f      *Factory
	c      *fakeClient
	in     *bytes.Buffer
	out    *syncBuffer
	errOut *syncBuffer
}

// newTestEnv is a Factory whose client is a fake with a running daemon and the fixture.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	ios, in, out, errOut := testIO()
	c := &fakeClient{running: true, procs: fixture(), ids: []int{0, 1}, errs: map[string]error{}}
	f := &Factory{IO: ios, Home: "/home/u/.tend", Cwd: t.TempDir(), Environ: []string{"PATH=/usr/bin:/bin", "A=1"},
		Client: func() (client.API, error) { return c, nil }}
	return &testEnv{f: f, c: c, in: in, out: out, errOut: errOut}
}

// run runs the whole CLI with args and returns the exit code.
func (e *testEnv) run(args ...string) int { return Run(e.f, args) }

// parse runs cmd under a root that has tend's persistent flags, as NewCmdRoot does, so that
// runF sees the options as the flags left them.
func parse(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	root := &cobra.Command{Use: "tend", SilenceErrors: true, SilenceUsage: true}
	root.PersistentFlags().Bool("no-daemon", false, "")
	root.PersistentFlags().BoolP("silent", "s", false, "")
	root.AddCommand(cmd)
	root.SetArgs(append([]string{cmd.Name()}, args...))
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return root.Execute()
}

// slowFake is a fake whose Action returns only once something was said (or after 10 s).
type slowFake struct {
	*fakeClient
	said <-chan struct{}
}

func (s slowFake) Action(verb, target string) error {
	select {
	case <-s.said:
	case <-time.After(10 * time.Second):
	}
	return s.fakeClient.Action(verb, target)
}

// signalWriter is a buffer that closes said at its first write.
type signalWriter struct {
	syncBuffer
	once sync.Once
	said chan struct{}
}

func (w *signalWriter) Write(b []byte) (int, error) {
	n, err := w.syncBuffer.Write(b)
	w.once.Do(func() { close(w.said) })
	return n, err
}

// settingsString prints settings as key=value, sorted.
func settingsString(m map[string]any) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(out, ",")
}
