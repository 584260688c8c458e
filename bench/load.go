package main

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

// loadResult counts the outcomes of a load loop. Refused connections are apart from failed
// requests: a refusal means nobody held the port, a failure that a request got lost on the way.
type loadResult struct {
	ok, failed, refused atomic.Int64
}

// loadLoop sends GET / to addr from conns clients until ctx ends, each request on a new
// connection, and never retries: net/http would retry idempotent requests on reused connections
// and hide exactly the failures counted here.
func loadLoop(ctx context.Context, addr string, conns int) (res *loadResult, wait func()) {
	res = &loadResult{}
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				switch err := oneRequest(addr); {
				case err == nil:
					res.ok.Add(1)
				case errors.Is(err, syscall.ECONNREFUSED):
					res.refused.Add(1)
					time.Sleep(10 * time.Millisecond) // no server: do not spin
				default:
					res.failed.Add(1)
				}
			}
		}()
	}
	return res, wg.Wait
}

var errStatus = errors.New("status not 200")

func oneRequest(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errStatus
	}
	_, err = io.Copy(io.Discard, resp.Body) // a cut body is a failed request too
	return err
}

// freePort asks the kernel for a free port on loopback.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitServing waits until addr answers a request.
func waitServing(addr string, timeout time.Duration) bool {
	return waitUntil(timeout, 50*time.Millisecond, func() bool { return oneRequest(addr) == nil })
}
