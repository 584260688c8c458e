// Package client talks to the daemon over $TEND_HOME/tend.sock and starts it when it is not
// running. API is what the CLI asks of a daemon; *Client implements it, and the CLI's tests fake
// it.
package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/errdefs"
	"github.com/tend-sh/tend/internal/home"
	"github.com/tend-sh/tend/internal/state"
	"github.com/tend-sh/tend/internal/wire"
)

// API is what the CLI asks of a daemon. Every call but Running and Kill starts a daemon first
// when none runs (if the client is set to).
type API interface {
	// Running reports whether a daemon answers, without starting one.
	Running() bool
	Ping() (api.Ping, error)
	// List is jlist decoded; JlistRaw is its bytes as the daemon sent them.
	List() ([]api.Process, error)
	JlistRaw() ([]byte, error)
	// Rows is List without each process's environment: for tables and selectors.
	Rows() ([]api.Process, error)
	// Specs are the apps' settings (export).
	Specs() ([]config.AppSpec, error)
	Start(req api.StartRequest) error
	// Action applies verb (start, stop, restart, reload, delete) to a selector.
	Action(verb, target string) error
	// Change applies verb to req.Target after giving its apps req.Env (--update-env) and
	// req.Settings (restart api --node-args=…).
	Change(verb string, req api.TargetRequest) error
	Scale(name string, count int) error
	Message(target string, msg json.RawMessage) (api.ActionResult, error)
	Stdin(target, line string) (api.ActionResult, error)
	Signal(target, signal string) error
	// Kill stops every app and the daemon, and returns once the daemon's process is gone (or
	// after 10 s). It never starts a daemon.
	Kill() error
	// Update replaces the daemon with one of the binary at exe, keeping every app, and returns
	// the new daemon's ping once it answers.
	Update(exe string) (api.Ping, error)
	// Save writes the dump (tend save); Resurrect brings a dump's apps back.
	Save(force bool) (api.SaveResult, error)
	Resurrect(reg state.Registry) (api.ResurrectResult, error)
	// Settings reads the settings of `tend set`; Set changes one; ReloadLogs reopens every log
	// file (after an external logrotate moved them).
	Settings() (api.Settings, error)
	Set(req api.SettingRequest) (api.Settings, error)
	ReloadLogs() error
	// Events streams the daemon's events, one JSON object a line, until closed.
	Events() (io.ReadCloser, error)
	// Metrics is the Prometheus exposition of every instance and of the daemon.
	Metrics() ([]byte, error)
}

// Error is an answer of the daemon that is not a success. errors.Is finds the errdefs kind its
// wire kind names.
type Error struct {
	Status int
	Kind   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap is the errdefs sentinel of e's kind (nil for a kind that has none).
func (e *Error) Unwrap() error { return errdefs.FromKind(e.Kind) }

// ActionTimeout bounds a request that changes something (start, stop, delete…).
const ActionTimeout = 30 * time.Minute

// Client is a connection to one $TEND_HOME's daemon.
type Client struct {
	Home      string
	Socket    string
	Version   string    // the CLI's version, compared with the daemon's
	Warn      io.Writer // where the version mismatch warning goes
	AutoStart bool
	Timeout   time.Duration

	paths  home.Layout
	warned bool
}

var _ API = (*Client)(nil)

// New returns a client for the $TEND_HOME at dir.
func New(dir, version string, warn io.Writer) *Client {
	p := home.At(dir)
	return &Client{Home: dir, Socket: p.Socket, Version: version, Warn: warn, AutoStart: true, Timeout: 60 * time.Second, paths: p}
}

// Ping asks the daemon who it is.
func (c *Client) Ping() (p api.Ping, err error) {
	err = c.Do("GET", api.PathPing, nil, &p)
	return p, err
}

// List returns every process, decoded.
func (c *Client) List() ([]api.Process, error) {
	var procs []api.Process
	if err := c.Do("GET", api.PathJlist, nil, &procs); err != nil {
		return nil, err
	}
	return procs, nil
}

// Specs are the apps' settings.
func (c *Client) Specs() ([]config.AppSpec, error) {
	var out []config.AppSpec
	if err := c.Do("GET", api.PathSpecs, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Rows is the list without the processes' environments.
func (c *Client) Rows() ([]api.Process, error) {
	var rows []api.Row
	if err := c.Do("GET", api.PathRows, nil, &rows); err != nil {
		return nil, err
	}
	procs := make([]api.Process, len(rows))
	for i, r := range rows {
		procs[i] = r.Process()
	}
	return procs, nil
}

// JlistRaw returns the daemon's jlist bytes undecoded: the fast path of `tend jlist`.
func (c *Client) JlistRaw() ([]byte, error) { return c.Raw("GET", api.PathJlist, nil) }

// Start starts (or restarts, or reloads, as req.Mode says) apps from resolved specs.
func (c *Client) Start(req api.StartRequest) error {
	return c.Do("POST", api.PathStart, req, nil)
}

// Action applies verb to target.
func (c *Client) Action(verb, target string) error {
	return c.Do("POST", api.PathAction+verb, api.TargetRequest{Target: target}, nil)
}

// Change applies verb to req.Target with a new environment or new settings for its apps.
func (c *Client) Change(verb string, req api.TargetRequest) error {
	return c.Do("POST", api.PathAction+verb, req, nil)
}

// Events streams the daemon's events from now on. The stream has no deadline: it ends when the
// daemon stops or the caller closes it.
func (c *Client) Events() (io.ReadCloser, error) {
	resp, err := c.send("GET", api.PathEvents, nil)
	if err != nil {
		if isNoDaemon(err) {
			return nil, fmt.Errorf("%w: no tend daemon is running for %s; start an app first", errdefs.ErrUnreachable, c.Home)
		}
		return nil, fmt.Errorf("%w: cannot reach the daemon at %s: %v", errdefs.ErrUnreachable, c.Socket, rootCause(err))
	}
	if resp.Status/100 != 2 {
		resp.Close()
		return nil, &Error{Status: resp.Status, Msg: "the daemon refused the event stream"}
	}
	_ = resp.conn.SetDeadline(time.Time{})
	return struct {
		io.Reader
		io.Closer
	}{resp.Body, resp}, nil
}

// Metrics is the daemon's /metrics.
func (c *Client) Metrics() ([]byte, error) { return c.Raw("GET", api.PathMetrics, nil) }

// Scale sets an app's number of instances.
func (c *Client) Scale(name string, count int) error {
	return c.Do("POST", api.PathScale, api.ScaleRequest{Name: name, Count: count}, nil)
}

// Message sends a JSON value to process.on('message') in the target's instances.
func (c *Client) Message(target string, msg json.RawMessage) (res api.ActionResult, err error) {
	err = c.Do("POST", api.PathMessage, api.MessageRequest{Target: target, Message: msg}, &res)
	return res, err
}

// Stdin writes a line to the stdin of the target's instances.
func (c *Client) Stdin(target, line string) (res api.ActionResult, err error) {
	err = c.Do("POST", api.PathStdin, api.StdinRequest{Target: target, Line: line}, &res)
	return res, err
}

// Signal sends a signal (a name or a number) to the target's main processes.
func (c *Client) Signal(target, signal string) error {
	return c.Do("POST", api.PathSignal, api.TargetRequest{Target: target, Signal: signal}, nil)
}

// Kill stops every app and the daemon, and returns once the daemon's process is gone, so the
// next command meets a new one.
func (c *Client) Kill() error {
	auto := c.AutoStart
	c.AutoStart = false
	defer func() { c.AutoStart = auto }()
	var ping api.Ping
	_ = c.Do("GET", api.PathPing, nil, &ping)
	keeper := readPid(c.paths.KeeperPid)
	err := c.Do("POST", api.PathKill, nil, nil)
	// The daemon goes, and its keeper after it.
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range []int{ping.Pid, keeper} {
		for pid > 0 && unix.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return err
}

// Save implements API.
func (c *Client) Save(force bool) (res api.SaveResult, err error) {
	err = c.Do("POST", api.PathSave, api.SaveRequest{Force: force}, &res)
	return res, err
}

// Resurrect implements API.
func (c *Client) Resurrect(reg state.Registry) (res api.ResurrectResult, err error) {
	err = c.Do("POST", api.PathRevive, reg, &res)
	return res, err
}

// Settings implements API.
func (c *Client) Settings() (res api.Settings, err error) {
	err = c.Do("GET", api.PathSettings, nil, &res)
	return res, err
}

// Set implements API.
func (c *Client) Set(req api.SettingRequest) (res api.Settings, err error) {
	err = c.Do("POST", api.PathSettings, req, &res)
	return res, err
}

// ReloadLogs implements API.
func (c *Client) ReloadLogs() error { return c.Do("POST", api.PathReopen, struct{}{}, nil) }

// Update implements API.
func (c *Client) Update(exe string) (api.Ping, error) {
	c.warned = true      // "run tend update" is not news to tend update
	old, err := c.Ping() // starts a daemon if none runs: then there is one to replace
	if err != nil {
		return api.Ping{}, err
	}
	if old.Keeper == 0 {
		return api.Ping{}, fmt.Errorf("the daemon (pid %d, version %s) runs without a keeper, so its apps cannot outlive it; run `tend kill` and start your apps again to use this binary", old.Pid, old.Version)
	}
	if err := c.Do("POST", api.PathUpdate, api.UpdateRequest{Exe: exe}, nil); err != nil {
		return api.Ping{}, err
	}
	auto := c.AutoStart
	c.AutoStart = false // the keeper starts the next daemon; a second one must not
	defer func() { c.AutoStart = auto }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p, err := c.Ping(); err == nil && p.Pid != old.Pid {
			return p, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return api.Ping{}, errdefs.Newf(errdefs.ErrUnreachable, "the new daemon did not answer within 10s of the update; see %s", c.paths.Log)
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// keeperRuns reports whether a keeper holds $TEND_HOME: its daemon is on its way back.
func (c *Client) keeperRuns() bool {
	f, err := os.Open(c.paths.KeeperLock)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return err == unix.EWOULDBLOCK
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Do sends a request; in (if not nil) is sent as JSON and out (if not nil) receives the answer.
func (c *Client) Do(method, path string, in, out any) error {
	body, err := c.Raw(method, path, in)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("bad answer from daemon for %s: %v", path, err)
		}
	}
	return nil
}

// Raw sends a request and returns the body of a successful answer as it came.
func (c *Client) Raw(method, path string, in any) ([]byte, error) {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	resp, err := c.send(method, path, payload)
	if err != nil && c.AutoStart && isNoDaemon(err) {
		if serr := c.StartDaemon(); serr != nil {
			return nil, serr
		}
		resp, err = c.send(method, path, payload)
	}
	if err != nil && isCutShort(err) && c.keeperRuns() {
		if method != "GET" {
			// Not asked again: it may have been done. Its keeper's next daemon finishes or
			// undoes what the dead one was doing.
			return nil, fmt.Errorf("the daemon died before it answered (see %s); the next one has finished or undone what it was doing: see tend ls", c.paths.Log)
		}
		// The daemon died with our read in its queue, and its keeper is starting the next one:
		// a read is safe to ask again.
		if serr := c.waitServing(nil); serr == nil {
			resp, err = c.send(method, path, payload)
		}
	}
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, errdefs.Newf(errdefs.ErrUnreachable, "TEND_HOME %s is not a folder; set TEND_HOME to a folder you own", c.Home)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || os.IsTimeout(err) {
			return nil, fmt.Errorf("%w: the daemon at %s did not answer within %s; see %s, or stop it with kill $(cat %s)",
				errdefs.ErrUnreachable, c.Socket, c.Timeout, c.paths.Log, c.paths.Pid)
		}
		return nil, fmt.Errorf("%w: cannot reach the daemon at %s: %v", errdefs.ErrUnreachable, c.Socket, rootCause(err))
	}
	defer resp.Close()
	c.checkVersion(resp.Header.Get(api.VersionHead))
	// Sized from Content-Length: jlist's answer is tens of KB, and growing a buffer to it
	// touches fresh pages several times over.
	n, _ := strconv.Atoi(resp.Header.Get("Content-Length"))
	buf := bytes.NewBuffer(make([]byte, 0, min(max(n, 0), 64<<20)+512))
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("%w: reading answer for %s: %v", errdefs.ErrUnreachable, path, err)
	}
	data := buf.Bytes()
	if resp.Status/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, &Error{Status: resp.Status, Kind: e.Kind, Msg: e.Error}
	}
	return data, nil
}

// send makes one request on a fresh connection. A CLI makes one or two requests in its life:
// one round trip of internal/wire's HTTP/1.1, no transport, no pool; the connection closes
// with the body. This is the path `tend jlist` is timed on.
func (c *Client) send(method, path string, payload []byte) (*response, error) {
	conn, err := net.DialTimeout("unix", c.Socket, c.Timeout)
	if err != nil {
		return nil, err
	}
	// A read answers at once or the daemon is stuck. An action may take as long as the apps
	// make it (kill_timeout, listen_timeout, as the user set them), so it gets a far bound.
	limit := c.Timeout
	if method != "GET" {
		limit = max(limit, ActionTimeout)
	}
	_ = conn.SetDeadline(time.Now().Add(limit))
	if err := wire.WriteRequest(conn, method, path, payload); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := wire.ReadResponse(bufio.NewReader(conn))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &response{Response: resp, conn: conn}, nil
}

// response is an answer whose connection closes with it.
type response struct {
	*wire.Response
	conn net.Conn
}

func (r *response) Close() error { return r.conn.Close() }

func (c *Client) checkVersion(v string) {
	if c.warned || v == "" || v == c.Version || c.Warn == nil {
		return
	}
	c.warned = true
	fmt.Fprintf(c.Warn, "warning: the tend daemon runs version %s and this CLI is %s; run `tend update` to move the daemon to this binary, keeping every app\n", v, c.Version)
}

// isCutShort is a connection the daemon accepted and dropped without an answer.
func isCutShort(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isNoDaemon(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// Running reports whether a daemon answers on the socket, without starting one.
func (c *Client) Running() bool {
	conn, err := net.DialTimeout("unix", c.Socket, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// StartDaemon starts a detached daemon for Home and waits until it answers. A lock file keeps
// two CLIs from starting two daemons; the second one finds the first one's daemon.
func (c *Client) StartDaemon() error {
	if err := os.MkdirAll(c.Home, home.DirMode); err != nil {
		return errdefs.Newf(errdefs.ErrUnreachable, "TEND_HOME %s cannot be created: %v; set TEND_HOME to a folder you own", c.Home, rootCause(err))
	}
	lockPath := c.paths.SpawnLock
	lock, err := home.OpenFile(lockPath, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return errdefs.Newf(errdefs.ErrUnreachable, "TEND_HOME %s cannot be written: %v; set TEND_HOME to a folder you own", c.Home, rootCause(err))
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %v", lockPath, err)
	}
	if c.Running() {
		return nil
	}
	if c.keeperRuns() {
		// Its daemon died and the keeper is starting another: wait for it, start nothing.
		return c.waitServing(nil)
	}
	if err := home.CheckOwner(c.Home); err != nil { // the keeper refuses too; said here plainly
		return errdefs.Newf(errdefs.ErrUnreachable, "%v", err)
	}
	if pid := c.paths.PM2Daemon(); pid > 0 { // the keeper refuses too; said here without its prefix
		return errdefs.Newf(errdefs.ErrUnreachable, "TEND_HOME %s is PM2's home and PM2's daemon runs there (pid %d); both would write the same log files: run `pm2 kill` first, or set TEND_HOME to another folder", c.Home, pid)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary to start the daemon: %v", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// What the runtime itself prints when the daemon dies of a bug (a panic outside any
	// recover) goes to tend.log, beside the daemon's own lines, instead of nowhere.
	stderr := devnull
	if f, err := os.OpenFile(c.paths.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, home.FileMode); err == nil {
		defer f.Close()
		stderr = f
	}
	// Not a fork: a fresh exec of this binary in a new session, with no inherited pipe (one
	// would make `$(tend start …)` and ssh wait for the daemon to exit).
	cmd := exec.Command(self, "daemon", "--background")
	cmd.Env = append(os.Environ(), "TEND_HOME="+c.Home)
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return c.waitServing(exited)
}

// waitServing waits until a daemon answers, or until the process starting it exits.
func (c *Client) waitServing(exited <-chan error) error {
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if c.Running() {
				return nil
			}
			return fmt.Errorf("%w: the daemon exited at start (%v): %s", errdefs.ErrUnreachable, err, lastLogLine(c.paths.Log))
		case <-deadline:
			return fmt.Errorf("%w: the daemon did not answer within 10s of starting; see %s", errdefs.ErrUnreachable, c.paths.Log)
		case <-tick.C:
			if c.Running() {
				return nil
			}
		}
	}
}

func lastLogLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "see " + path
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return lines[len(lines)-1]
}
