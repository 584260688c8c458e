// Package proxy is cluster mode's fallback for apps that insist on binding their port
// themselves: the daemon listens on the app's public port and relays each connection to one of
// the instances, which listen on private ports of their own (research §7.2, item 5). It costs a
// hop and the daemon's CPU, but it is the only mode that can try another instance when one
// refuses a connection.
package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// Proxy relays the connections of one app's public port to its ready instances, in turn.
type Proxy struct {
	log *slog.Logger

	mu       sync.Mutex
	backends map[int]string // slot → address of its ready instance
	slots    []int          // the slots with a backend, in order
	active   map[string]int // connections being relayed, per backend address
	next     int
	lns      []net.Listener
	closed   bool
	changed  chan struct{} // closed and replaced whenever a backend is added
}

// New returns a proxy with no listener and no backend yet.
func New(log *slog.Logger) *Proxy {
	return &Proxy{log: log, backends: map[int]string{}, active: map[string]int{}, changed: make(chan struct{})}
}

// Serve accepts on the listening socket fd (the proxy owns it from now on) until Close.
func (p *Proxy) Serve(fd int) error {
	f := os.NewFile(uintptr(fd), "proxy-listener")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	go p.accept(ln)
	return nil
}

func (p *Proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("proxy accept", "err", err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return
		}
		go p.relay(c)
	}
}

// connectWait bounds how long a client waits for an instance when none accepts (all of them
// restarting); the connection is closed after that.
const connectWait = 10 * time.Second

func (p *Proxy) relay(c net.Conn) {
	defer c.Close()
	deadline := time.Now().Add(connectWait)
	var up net.Conn
	var upAddr string
	for up == nil {
		addrs, changed := p.pick()
		for _, a := range addrs {
			// Counted before the dial: a drain that sees no connection to a backend must not
			// stop it under one being opened.
			p.count(a, 1)
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				up, upAddr = conn, a
				break
			}
			p.count(a, -1)
		}
		if up != nil {
			break
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return
		}
		select { // an instance may come back, or become ready, meanwhile
		case <-changed:
		case <-time.After(min(wait, 100*time.Millisecond)):
		}
	}
	defer up.Close()
	defer p.count(upAddr, -1)
	done := make(chan struct{})
	go func() {
		pipe(up, c)
		close(done)
	}()
	pipe(c, up)
	<-done
}

// pipe copies one direction and passes the end of it on (half close), so that a client's
// shutdown of its writes reaches the instance and the other way round.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// pick returns the backends in the order to try them, starting with the next in turn.
func (p *Proxy) pick() ([]string, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.slots)
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, p.backends[p.slots[(p.next+i)%n]])
	}
	if n > 0 {
		p.next = (p.next + 1) % n
	}
	return out, p.changed
}

func (p *Proxy) count(addr string, d int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active[addr] += d; p.active[addr] <= 0 {
		delete(p.active, addr)
	}
}

// Active is the number of connections being relayed to addr: a replaced instance is stopped once
// it has none left.
func (p *Proxy) Active(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active[addr]
}

// Set makes addr the backend of slot.
func (p *Proxy) Set(slot int, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.backends[slot]; !ok {
		p.slots = append(p.slots, slot)
		slices.Sort(p.slots)
	}
	p.backends[slot] = addr
	close(p.changed)
	p.changed = make(chan struct{})
}

// Remove drops slot's backend if it is still addr (a newer run may have replaced it).
func (p *Proxy) Remove(slot int, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.backends[slot] != addr {
		return
	}
	delete(p.backends, slot)
	if i := slices.Index(p.slots, slot); i >= 0 {
		p.slots = slices.Delete(p.slots, i, i+1)
	}
}

// Close stops accepting; connections being relayed go on until either side ends them.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, ln := range p.lns {
		ln.Close()
	}
	p.lns = nil
}
