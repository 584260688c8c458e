package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/events"
)

// EventLog follows `tend events --json` in a process of its own, as a script would; it needs a
// daemon. FollowEvents starts one.
type EventLog struct {
	t  *testing.T
	ch chan events.Event
}

func (h *Harness) FollowEvents() *EventLog {
	h.T.Helper()
	cmd := exec.Command(h.Bin, "events", "--json")
	cmd.Env = h.Env
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.T.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		h.T.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.T.Fatal(err)
	}
	// Once it says it follows, the daemon has it as a listener: no later event is missed.
	first, err := bufio.NewReader(errPipe).ReadString('\n')
	if !strings.Contains(first, "following") {
		h.T.Fatalf("tend events: %q, %v", first, err)
	}
	go io.Copy(io.Discard, errPipe)
	l := &EventLog{t: h.T, ch: make(chan events.Event, 4096)}
	go func() {
		defer close(l.ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e events.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				h.T.Errorf("events --json printed a line that is not an event: %q", sc.Text())
				continue
			}
			l.ch <- e
		}
	}()
	h.T.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	})
	return l
}

// WaitFor returns the first event that matches, failing the test after timeout.
func (l *EventLog) WaitFor(what string, timeout time.Duration, match func(events.Event) bool) events.Event {
	l.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-l.ch:
			if !ok {
				l.t.Fatalf("the event stream ended before %s", what)
			}
			if match(e) {
				return e
			}
		case <-deadline:
			l.t.Fatalf("no %s event within %s", what, timeout)
		}
	}
}
