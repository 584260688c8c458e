// Package worker is for Go apps that tend runs: the listening sockets tend holds for the app,
// readiness, draining on a reload, custom metrics, and messages to and from tend over the
// instance's IPC channel (docs/ipc.md).
//
//	worker.Ready()                  // the instance is online; a reload may now retire the old one
//	worker.Serve(&http.Server{Handler: h}) // serves tend's sockets, drains on a reload
//
// or, by hand:
//
//	lns, err := worker.Listeners()  // one per --port, in order
//	go http.Serve(lns[0], handler)
//	for m := range worker.Messages() { ... }
//
// Outside tend every call degrades gracefully: no listeners, and Ready and Send do nothing.
package worker

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// listenFdsStart is where inherited sockets begin (systemd's SD_LISTEN_FDS_START).
const listenFdsStart = 3

var (
	listenOnce sync.Once
	listeners  []net.Listener
	names      []string
	listenErr  error
)

// Listeners returns the sockets tend holds for this instance, one per port given with --port (or
// port in a config file), in that order. They come from systemd's socket activation protocol
// (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), so the same code runs under systemd. The variables
// are removed from the environment, so that child processes do not take the sockets for theirs.
func Listeners() ([]net.Listener, error) {
	listenOnce.Do(func() { listeners, names, listenErr = inherit() })
	return listeners, listenErr
}

// Listener returns the inherited socket of one port ("8000"), as named in LISTEN_FDNAMES.
func Listener(port string) (net.Listener, error) {
	lns, err := Listeners()
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		if n == port && i < len(lns) {
			return lns[i], nil
		}
	}
	return nil, fmt.Errorf("worker: no inherited socket for port %s (have %s); start the app with --port %s", port, strings.Join(names, ", "), port)
}

func inherit() ([]net.Listener, []string, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	fdNames := os.Getenv("LISTEN_FDNAMES")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	n, err := listenCount(pid, fds, os.Getpid())
	if err != nil || n == 0 {
		return nil, nil, err
	}
	var out []net.Listener
	for fd := listenFdsStart; fd < listenFdsStart+n; fd++ {
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		ln, err := net.FileListener(f)
		f.Close() // FileListener made its own dup
		if err != nil {
			return nil, nil, fmt.Errorf("worker: inherited fd %d is not a listening socket: %w", fd, err)
		}
		out = append(out, ln)
	}
	var nm []string
	if fdNames != "" {
		nm = strings.Split(fdNames, ":")
	}
	return out, nm, nil
}

// maxListenFds bounds LISTEN_FDS: more is a mistake, not sockets.
const maxListenFds = 1024

// listenCount reads systemd's LISTEN_PID and LISTEN_FDS as this process (pid self) takes them:
// how many sockets it inherited from fd 3 on (0 when none were passed).
func listenCount(pid, fds string, self int) (int, error) {
	if fds == "" {
		return 0, nil
	}
	if pid != strconv.Itoa(self) {
		return 0, fmt.Errorf("worker: LISTEN_FDS is meant for pid %s, not this process (%d); a shell or wrapper between tend and the app forked instead of exec'ing it", pid, self)
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > maxListenFds {
		return 0, fmt.Errorf("worker: LISTEN_FDS=%q is not a count of sockets (0 to %d)", fds, maxListenFds)
	}
	return n, nil
}

// Instance is this instance's number among the app's instances (NODE_APP_INSTANCE), or 0.
func Instance() int {
	n, _ := strconv.Atoi(os.Getenv("NODE_APP_INSTANCE"))
	return n
}

var (
	chanOnce sync.Once
	channel  *net.UnixConn
	chanErr  error
	wmu      sync.Mutex

	readOnce sync.Once
	messages chan json.RawMessage
)

// ErrNoChannel is returned by Send when the process has no channel to tend.
var ErrNoChannel = errors.New("worker: no IPC channel to tend (not started by tend, or an app without one)")

func open() (*net.UnixConn, error) {
	chanOnce.Do(func() {
		v := os.Getenv("TEND_IPC_FD")
		if v == "" {
			v = os.Getenv("NODE_CHANNEL_FD")
		}
		if v == "" {
			chanErr = ErrNoChannel
			return
		}
		os.Unsetenv("TEND_IPC_FD")
		fd, err := strconv.Atoi(v)
		if err != nil {
			chanErr = fmt.Errorf("worker: IPC fd %q is not a number", v)
			return
		}
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "tend-ipc")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			chanErr = fmt.Errorf("worker: IPC channel: %w", err)
			return
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			c.Close()
			chanErr = errors.New("worker: IPC channel is not a unix socket")
			return
		}
		channel = uc
	})
	return channel, chanErr
}

// Send writes one message to tend: any JSON value. {"type":"process:msg","data":…,"id":N}
// reaches the instance with pm_id N, {…,"name":"api"} every instance of api.
func Send(v any) error {
	c, err := open()
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	wmu.Lock()
	defer wmu.Unlock()
	_, err = c.Write(append(b, '\n'))
	return err
}

// Ready tells tend that the instance serves: it turns online, and during a reload the old
// instance is retired. Without a channel it does nothing, so apps run unchanged outside tend.
func Ready() error {
	if err := Send("ready"); err != nil && !errors.Is(err, ErrNoChannel) {
		return err
	}
	return nil
}

// Metric reports a custom metric: tend shows it in describe, jlist (axm_monitor) and /metrics
// (tend_app_metric{name=…}), until the process ends. value is a number (or a string such as
// "10.5"); unit may be empty. Without a channel it does nothing.
func Metric(name string, value any, unit string) error {
	m := struct {
		Type  string `json:"type"`
		Name  string `json:"name"`
		Value any    `json:"value"`
		Unit  string `json:"unit,omitempty"`
	}{"tend:metric", name, value, unit}
	if err := Send(m); err != nil && !errors.Is(err, ErrNoChannel) {
		return err
	}
	return nil
}

// Messages returns the messages tend delivers (tend msg, process:msg from other instances), each
// one JSON value. The channel closes when tend closes the IPC channel. Without one it is closed.
func Messages() <-chan json.RawMessage {
	readOnce.Do(func() {
		messages = make(chan json.RawMessage, 64)
		c, err := open()
		if err != nil {
			close(messages)
			return
		}
		go func() {
			defer close(messages)
			lines := lineReader{r: bufio.NewReaderSize(c, 64<<10), max: maxMessage}
			for {
				line, err := lines.next()
				if err != nil {
					return
				}
				if len(line) == 0 {
					continue
				}
				// Node's internal messages ({"cmd":"NODE_…"}) are the protocol's, not the app's.
				var head struct {
					Cmd string `json:"cmd"`
				}
				if line[0] == '{' && json.Unmarshal(line, &head) == nil && strings.HasPrefix(head.Cmd, "NODE_") {
					if head.Cmd == drainCmd {
						startDrain()
					}
					continue
				}
				messages <- json.RawMessage(line)
			}
		}()
	})
	return messages
}

// maxMessage bounds one message a worker holds: tend's own bound (512 MiB, more than any Node app
// can send), past which a message is dropped and said on stderr, and the channel goes on. A
// channel that closed on one long message would leave the app deaf to every later one.
const maxMessage = 512 << 20

// lineReader reads the channel's newline-delimited messages, dropping those over max bytes.
type lineReader struct {
	r       *bufio.Reader
	max     int
	dropped int
}

// next returns the next message, a fresh slice, without its newline.
func (l *lineReader) next() ([]byte, error) {
	var line []byte
	skipped := 0 // bytes of a message over the bound, dropped so far
	for {
		chunk, err := l.r.ReadSlice('\n')
		if skipped > 0 || len(line)+len(chunk) > l.max+1 {
			skipped += len(line) + len(chunk)
			line = nil
		} else {
			line = append(line, chunk...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			return nil, err
		case skipped > 0:
			l.dropped++
			fmt.Fprintf(os.Stderr, "worker: dropped a message of %d bytes from tend (over %d); %d dropped so far\n", skipped, l.max, l.dropped)
			skipped = 0
			continue
		}
		return line[:len(line)-1], nil
	}
}
