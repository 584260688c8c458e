package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/web"
)

// WebOptions are `tend web`'s.
type WebOptions struct {
	IO      *IOStreams
	Client  func() (client.API, error)
	Environ []string
	Listen  string
	// Context ends the server (Ctrl-C, SIGTERM).
	Context func() (context.Context, context.CancelFunc)
}

// NewCmdWeb builds `tend web`: the page, served until stopped, behind a token.
func NewCmdWeb(f *Factory, runF func(*WebOptions) error) *cobra.Command {
	o := &WebOptions{IO: f.IO, Client: f.Client, Environ: f.Environ, Context: func() (context.Context, context.CancelFunc) {
		return signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	}}
	cmd := &cobra.Command{
		Use:   "web [--listen host:port]",
		Short: "Serve a live web page of the apps (charts, logs, events, restart/reload/stop) until stopped; every request needs the token it prints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := config.CheckListenAddr(o.Listen); err != nil {
				return usagef("--listen: %v", err)
			}
			if runF != nil {
				return runF(o)
			}
			return webRun(o)
		},
	}
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:9616", "where to serve the page")
	return cmd
}

func webRun(o *WebOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	if !c.Running() {
		return fmt.Errorf("no tend daemon is running: start an app first (tend start app.js)")
	}
	token := envMap(o.Environ)["TEND_WEB_TOKEN"]
	if token == "" {
		if token, err = web.Token(); err != nil {
			return err
		}
	}
	h := (&web.Server{C: c, Token: token, Header: rowHeader, Cells: rowCells}).Handler()
	return serveTCP(o.Listen, h, o.Context, func(addr net.Addr) {
		fmt.Fprintf(o.IO.ErrOut, "tend: open http://%s/?token=%s (Ctrl-C stops; every request needs that token)\n", addr, token)
	})
}
