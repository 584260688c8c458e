// Package client talks to the daemon over $TEND_HOME/tend.sock and starts it when it is not
// running.
package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/api"
)

// Error is an answer of the daemon that is not a success.
type Error struct {
	Status int
	Kind   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// ErrUnreachable means no daemon answered (and none could be started).
var ErrUnreachable = errors.New("daemon unreachable")

// homeError is a $TEND_HOME where no daemon can live: no daemon is reachable, and the message
// says why without the generic prefix.
type homeError struct{ msg string }

func (e homeError) Error() string        { return e.msg }
func (e homeError) Is(target error) bool { return target == ErrUnreachable }

func homeErrorf(format string, a ...any) error { return homeError{fmt.Sprintf(format, a...)} }

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

	warned bool
}

// New returns a client for home.
func New(home, version string, warn io.Writer) *Client {
	return &Client{Home: home, Socket: filepath.Join(home, "tend.sock"), Version: version, Warn: warn, AutoStart: true, Timeout: 60 * time.Second}
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
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, homeErrorf("TEND_HOME %s is not a folder; set TEND_HOME to a folder you own", c.Home)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || os.IsTimeout(err) {
			return nil, fmt.Errorf("%w: the daemon at %s did not answer within %s; see %s, or stop it with kill $(cat %s)",
				ErrUnreachable, c.Socket, c.Timeout, filepath.Join(c.Home, "tend.log"), filepath.Join(c.Home, "daemon.pid"))
		}
		return nil, fmt.Errorf("%w: cannot reach the daemon at %s: %v", ErrUnreachable, c.Socket, rootCause(err))
	}
	defer resp.Body.Close()
	c.checkVersion(resp.Header.Get(api.VersionHead))
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: reading answer for %s: %v", ErrUnreachable, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, &Error{Status: resp.StatusCode, Kind: e.Kind, Msg: e.Error}
	}
	return data, nil
}

// send makes one request on a fresh connection. A CLI makes one or two requests in its life, so
// it skips http.Transport (its pool and goroutines) and writes and reads HTTP/1.1 itself: this
// is the path `tend jlist` is timed on.
func (c *Client) send(method, path string, payload []byte) (*http.Response, error) {
	conn, err := net.DialTimeout("unix", c.Socket, c.Timeout)
	if err != nil {
		return nil, err
	}
	// A read answers at once or the daemon is stuck. An action may take as long as the apps
	// make it (kill_timeout, listen_timeout, as the user set them), so it gets a far bound.
	limit := c.Timeout
	if method != http.MethodGet {
		limit = max(limit, ActionTimeout)
	}
	_ = conn.SetDeadline(time.Now().Add(limit))
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequest(method, "http://tend"+path, body)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Close = true
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body = &closeBoth{ReadCloser: resp.Body, conn: conn}
	return resp, nil
}

type closeBoth struct {
	io.ReadCloser
	conn net.Conn
}

func (b *closeBoth) Close() error { err := b.ReadCloser.Close(); b.conn.Close(); return err }

func (c *Client) checkVersion(v string) {
	if c.warned || v == "" || v == c.Version || c.Warn == nil {
		return
	}
	c.warned = true
	fmt.Fprintf(c.Warn, "warning: the tend daemon runs version %s and this CLI is %s; run `tend kill` and start again to use %s\n", v, c.Version, c.Version)
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
	if err := os.MkdirAll(c.Home, 0o700); err != nil {
		return homeErrorf("TEND_HOME %s cannot be created: %v; set TEND_HOME to a folder you own", c.Home, rootCause(err))
	}
	lockPath := filepath.Join(c.Home, "spawn.lock")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return homeErrorf("TEND_HOME %s cannot be written: %v; set TEND_HOME to a folder you own", c.Home, rootCause(err))
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %v", lockPath, err)
	}
	if c.Running() {
		return nil
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
	// Not a fork: a fresh exec of this binary in a new session, with no inherited pipe (one
	// would make `$(tend start …)` and ssh wait for the daemon to exit).
	cmd := exec.Command(self, "daemon", "--background")
	cmd.Env = append(os.Environ(), "TEND_HOME="+c.Home)
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if c.Running() {
				return nil
			}
			return fmt.Errorf("%w: the daemon exited at start (%v): %s", ErrUnreachable, err, lastLogLine(filepath.Join(c.Home, "tend.log")))
		case <-deadline:
			return fmt.Errorf("%w: the daemon did not answer within 10s of starting; see %s", ErrUnreachable, filepath.Join(c.Home, "tend.log"))
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
