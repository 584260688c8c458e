package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/wire"
)

// metricsServer is the daemon's own /metrics on TCP (metrics_listen): that route only, never
// the control API, which stays on tend.sock.
type metricsServer struct {
	mu   sync.Mutex
	addr string
	srv  *wire.Server
}

// serveMetrics serves /metrics on addr from now on, instead of where it served before ("" for
// nowhere). An address that cannot be bound is an error that names it, and the old one stays.
func (d *daemon) serveMetrics(addr string) error {
	m := &d.metricsSrv
	m.mu.Lock()
	defer m.mu.Unlock()
	if addr == m.addr {
		return nil
	}
	var next *wire.Server
	if addr != "" {
		ln, err := listenTCP(addr)
		if err != nil {
			return err
		}
		mux := wire.NewServeMux()
		mux.HandleFunc("GET "+api.PathMetrics, d.metrics)
		next = &wire.Server{Handler: d.guard(mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
		go func() {
			if err := next.Serve(ln); err != nil && !errors.Is(err, wire.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				d.log.Error("metrics listener", "addr", addr, "err", err)
			}
		}()
		d.log.Info("serving /metrics", "addr", ln.Addr().String())
	}
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = m.srv.Shutdown(ctx)
		cancel()
	}
	m.addr, m.srv = addr, next
	return nil
}

// listenTCP binds addr, with an error a user can act on.
func listenTCP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s is in use by another program: pick another port (tend set metrics_listen 127.0.0.1:<port>)", addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("%s: a port under 1024 needs root: pick a port from 1024 up", addr)
	default:
		return nil, fmt.Errorf("cannot listen on %s: %v", addr, err)
	}
}
