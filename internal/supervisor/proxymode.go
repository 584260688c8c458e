package supervisor

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/sockets"
)

// probe tells the instance's goroutine when a proxied process accepts connections on its
// private port, which is how such an app says it listens.
func (in *Instance) probe(r *run) {
	defer func() { recover() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	limit := time.NewTimer(r.spec.ListenTimeout + time.Minute)
	defer limit.Stop()
	for {
		select {
		case <-r.exited:
			return
		case <-limit.C:
			return
		case <-tick.C:
		}
		if c, err := net.DialTimeout("tcp", r.backend, time.Second); err == nil {
			c.Close()
			in.post(event{r: r, kind: evListening})
			return
		}
	}
}

// privatePort picks a free loopback port for a proxied instance. Another program could take it
// before the instance binds it; the instance then fails to listen and is restarted.
func privatePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a private port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (a *App) proxyNow() *proxy.Proxy {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	return a.proxy
}

// ensureProxy starts relaying the app's port, once: its listening socket is probed and held
// like any slot socket, so a port in use fails the start before anything runs.
func (a *App) ensureProxy(spec *config.AppSpec, log *slog.Logger) error {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	if a.proxy != nil {
		return nil
	}
	l := spec.Ports[0]
	fd, _, _, err := a.socks.Dup(sockets.Key{Host: l.Host, Port: l.Port}, proxySlot, nil)
	if err != nil {
		return err
	}
	p := proxy.New(log.With("app", a.Name, "port", l.Port))
	if err := p.Serve(fd); err != nil {
		return fmt.Errorf("proxy for port %d: %w", l.Port, err)
	}
	a.proxy = p
	return nil
}

// proxySlot is where the proxy's own socket sits in the app's set: no instance has it, and it is
// never excluded from the kernel's choice (the group has only this socket).
const proxySlot = -1

func (a *App) closeProxy() {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	if a.proxy != nil {
		a.proxy.Close()
		a.proxy = nil
	}
}
