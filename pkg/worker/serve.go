package worker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// drainCmd is tend's ask to drain, sent before the kill signal when the process is replaced.
const drainCmd = "NODE_TEND_DRAIN"

// idleClose is how long a connection must have been idle before a drain closes it: closing it
// the moment the drain starts races a client that is sending its next request on it.
const idleClose = time.Second

var (
	drainMu    sync.Mutex
	drainHooks []func()
	drainOn    bool
)

// onDrain runs f when tend asks the process to drain (at once if it has already asked).
func onDrain(f func()) {
	drainMu.Lock()
	on := drainOn
	if !on {
		drainHooks = append(drainHooks, f)
	}
	drainMu.Unlock()
	if on {
		f()
	}
}

func startDrain() {
	drainMu.Lock()
	if drainOn {
		drainMu.Unlock()
		return
	}
	drainOn = true
	hooks := drainHooks
	drainHooks = nil
	drainMu.Unlock()
	for _, f := range hooks {
		f()
	}
}

// Serve serves srv on the sockets tend passed (or on lns, when given), and lets a reload replace
// the process without failing a request, as tend's preload does for Node:
//   - it tells tend it drains ("drainable"), and reads tend's messages (see Messages);
//   - on tend's drain (a reload replacing it) it stops accepting (the socket stays open in tend
//     and in the new process), answers every request with Connection: close, closes each
//     keep-alive connection once it has been idle for a second, and when none is left closes
//     its channel to tend, which then sends the kill signal;
//   - on SIGINT or SIGTERM (a stop) it lets the requests in flight finish (http.Server's
//     Shutdown) and returns.
//
// Without tend (no sockets, no channel) it is an error: use http.Server.Serve. It returns nil
// once the server is shut down.
func Serve(srv *http.Server, lns ...net.Listener) error {
	if len(lns) == 0 {
		var err error
		if lns, err = Listeners(); err != nil {
			return err
		}
		if len(lns) == 0 {
			return errors.New("worker: no socket from tend: start the app with --port")
		}
	}
	conns := &connSet{m: map[net.Conn]*connState{}}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		conns.track(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conns.draining() {
			w.Header().Set("Connection", "close") // the server closes it after this response
		}
		h.ServeHTTP(w, r)
	})
	done := make(chan struct{})
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			close(done)
		})
	}
	for _, ln := range lns {
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !conns.draining() {
				stop()
			}
		}()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			stop()
		case <-done:
		}
	}()
	Messages() // reads tend's messages, the drain among them
	onDrain(func() { go conns.drain(lns, done) })
	if err := Send("drainable"); err != nil && !errors.Is(err, ErrNoChannel) {
		return err
	}
	<-done
	return nil
}

// connSet is the server's connections and when each went idle.
type connSet struct {
	mu  sync.Mutex
	m   map[net.Conn]*connState
	off bool // draining
}

type connState struct {
	idle  bool
	since time.Time
}

func (s *connSet) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew, http.StateActive:
		s.m[c] = &connState{}
	case http.StateIdle:
		s.m[c] = &connState{idle: true, since: time.Now()}
	case http.StateHijacked, http.StateClosed:
		delete(s.m, c)
	}
}

func (s *connSet) draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.off
}

// drain stops accepting, then closes connections as they have been idle a second, and closes
// the channel to tend when none is left (or the server stops).
func (s *connSet) drain(lns []net.Listener, done <-chan struct{}) {
	s.mu.Lock()
	s.off = true
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close() // ours only: tend and the new process keep the socket
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		for c, st := range s.m {
			if st.idle && time.Since(st.since) >= idleClose {
				c.Close()
				delete(s.m, c)
			}
		}
		left := len(s.m)
		s.mu.Unlock()
		if left == 0 {
			if c, err := open(); err == nil {
				c.Close() // tells tend this process is drained
			}
			return
		}
		select {
		case <-t.C:
		case <-done:
			return
		}
	}
}
