// Package httpload is the load loop of the benchmarks and the cluster tests: HTTP requests on a
// new connection each (or on kept-alive connections), never retried, with refused connections counted apart from failed
// requests. net/http would retry idempotent requests on reused connections and hide exactly the
// failures counted here.
package httpload

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Result counts the outcomes of a load loop. A refusal means nobody held the port; a failure
// means a request got lost on the way (reset, cut short, timed out, not 200).
type Result struct {
	OK, Failed, Refused atomic.Int64
	// Workers counts the answers per X-Worker header, when the app sets it.
	mu      sync.Mutex
	Workers map[string]int
}

func (r *Result) served(worker string) {
	r.OK.Add(1)
	r.mu.Lock()
	r.Workers[worker]++
	r.mu.Unlock()
}

// WorkerCounts returns a copy of the answers per X-Worker.
func (r *Result) WorkerCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.Workers))
	for k, v := range r.Workers {
		out[k] = v
	}
	return out
}

// record counts one request's outcome. After a refusal the client pauses, so that a port
// nobody holds is not hammered.
func (r *Result) record(worker string, err error) {
	switch {
	case err == nil:
		r.served(worker)
	case errors.Is(err, syscall.ECONNREFUSED):
		r.Refused.Add(1)
		time.Sleep(10 * time.Millisecond)
	default:
		r.Failed.Add(1)
	}
}

// clients runs client in conns goroutines and returns the wait for all of them.
func clients(conns int, client func()) (wait func()) {
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client()
		}()
	}
	return wg.Wait
}

// Loop sends GET / to addr from conns clients until ctx ends. wait returns once every client
// has finished its last request.
func Loop(ctx context.Context, addr string, conns int) (res *Result, wait func()) {
	res = &Result{Workers: map[string]int{}}
	return res, clients(conns, func() {
		for ctx.Err() == nil {
			res.record(Get(addr))
		}
	})
}

// KeepAliveLoop is Loop with keep-alive: each client sends its requests one after another on
// one connection, and opens a new one only when the server closes it with Connection: close.
// A request that fails on a reused connection counts as failed: it is not retried, as Go's and
// browsers' clients would.
func KeepAliveLoop(ctx context.Context, addr string, conns int) (res *Result, wait func()) {
	res = &Result{Workers: map[string]int{}}
	return res, clients(conns, func() {
		var c net.Conn
		var br *bufio.Reader
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		for ctx.Err() == nil {
			if c == nil {
				var err error
				if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
					res.record("", err)
					c = nil
					continue
				}
				br = bufio.NewReader(c)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			worker, closing, err := request(c, br, false)
			res.record(worker, err)
			if err != nil || closing {
				c.Close()
				c = nil
			}
		}
	})
}

// request sends GET / on c and reads the whole answer: the X-Worker header, and whether the
// server closes the connection after it. A cut body is a failed request too.
func request(c net.Conn, br *bufio.Reader, closeAfter bool) (worker string, closing bool, err error) {
	req := "GET / HTTP/1.1\r\nHost: load\r\n\r\n"
	if closeAfter {
		req = "GET / HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n"
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return "", true, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", true, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "", true, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", resp.Close, ErrStatus
	}
	return resp.Header.Get("X-Worker"), resp.Close, nil
}

// ErrStatus is a response other than 200.
var ErrStatus = errors.New("status not 200")

// Get sends one GET / on a new connection and returns the X-Worker header of the answer.
func Get(addr string) (worker string, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	worker, _, err = request(c, bufio.NewReader(c), true)
	return worker, err
}
