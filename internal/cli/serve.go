package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/wire"
)

// serveTCP serves h on addr until ctx's context ends (Ctrl-C, SIGTERM): `tend metrics --listen`
// and `tend web`. listening is told the address once the port is bound; a port in use is one
// line that names it.
func serveTCP(addr string, h wire.Handler, ctx func() (context.Context, context.CancelFunc), listening func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return fmt.Errorf("--listen %s is in use by another program: pick another port", addr)
		}
		return fmt.Errorf("--listen %s: %v", addr, err)
	}
	srv := &wire.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	c, cancel := ctx()
	defer cancel()
	go func() {
		<-c.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()
	listening(ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, wire.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
