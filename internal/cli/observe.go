package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/internal/prom"
	"github.com/tend-sh/tend/internal/wire"
)

// EventsOptions are `tend events`'s.
type EventsOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	JSON   bool
}

// NewCmdEvents builds `tend events`: what happens to the apps, as it happens.
func NewCmdEvents(f *Factory, runF func(*EventsOptions) error) *cobra.Command {
	o := &EventsOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "events [--json]",
		Short: "Print what happens to the apps as it happens: starts, exits, restarts, reloads, memory limits, scales, dropped log lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return eventsRun(o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "one JSON object a line, for scripts and alerting")
	return cmd
}

func eventsRun(o *EventsOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	stream, err := c.Events()
	if err != nil {
		return err
	}
	defer stream.Close()
	// Said once the daemon listens for us: what happens from here on is printed.
	fmt.Fprintln(o.IO.ErrOut, "tend: following the apps' events (Ctrl-C stops)")
	sc := bufio.NewScanner(stream)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue // the daemon's heartbeat
		}
		if o.JSON {
			fmt.Fprintf(o.IO.Out, "%s\n", line)
			continue
		}
		var e events.Event
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		fmt.Fprintln(o.IO.Out, eventText(e))
	}
	fmt.Fprintln(o.IO.ErrOut, "tend: the daemon closed the event stream (it stopped)")
	return nil
}

// eventText is an event as a person reads it: the time, who, what, and the details.
func eventText(e events.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("15:04:05.000"))
	b.WriteByte(' ')
	if e.App != "" {
		b.WriteString(e.App)
		if e.ID != nil {
			fmt.Fprintf(&b, "[%d]", *e.ID)
		}
		b.WriteByte(' ')
	}
	b.WriteString(strings.ReplaceAll(e.Kind, "_", " "))
	var details []string
	add := func(format string, a ...any) { details = append(details, fmt.Sprintf(format, a...)) }
	if e.Reason != "" {
		add("%s", e.Reason)
	}
	if e.Pid > 0 {
		add("pid %d", e.Pid)
	}
	if e.ExitCode != nil {
		add("exit code %d", *e.ExitCode)
	}
	if e.Signal != "" {
		add("signal %s", e.Signal)
	}
	if e.UptimeMs > 0 {
		add("after %s", time.Duration(e.UptimeMs)*time.Millisecond)
	}
	if e.Limit > 0 {
		add("%s over %s", humanBytes(e.Memory), humanBytes(e.Limit))
	}
	if e.From != nil && e.To != nil {
		add("%d → %d instances", *e.From, *e.To)
	}
	if e.Stream != "" {
		add("%s", e.Stream)
	}
	if e.Dropped > 0 {
		add("%d lost", e.Dropped)
	}
	if e.Message != "" {
		add("%s", e.Message)
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	return b.String()
}

// MetricsOptions are `tend metrics`'s.
type MetricsOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	Listen string
	// Context ends a --listen server (Ctrl-C, SIGTERM).
	Context func() (context.Context, context.CancelFunc)
	// Served, when set, is told the address a --listen server listens on (tests).
	Served func(addr string)
}

// NewCmdMetrics builds `tend metrics`: Prometheus' text format, printed once or served.
func NewCmdMetrics(f *Factory, runF func(*MetricsOptions) error) *cobra.Command {
	o := &MetricsOptions{IO: f.IO, Client: f.Client, Context: func() (context.Context, context.CancelFunc) {
		return signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	}}
	cmd := &cobra.Command{
		Use:   "metrics [--listen host:port]",
		Short: "Print the apps' and the daemon's figures in Prometheus' text format, or serve them on /metrics",
		Example: `  tend metrics
  tend metrics --listen 127.0.0.1:9615
  tend set metrics_listen 127.0.0.1:9615   # the daemon serves /metrics itself, from now on`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("listen") {
				if err := config.CheckListenAddr(o.Listen); err != nil {
					return usagef("--listen: %v", err)
				}
			}
			if runF != nil {
				return runF(o)
			}
			return metricsRun(o)
		},
	}
	cmd.Flags().StringVar(&o.Listen, "listen", "", "serve /metrics on this address until stopped (Ctrl-C), asking the daemon at each scrape")
	return cmd
}

func metricsRun(o *MetricsOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	if o.Listen == "" {
		text, err := c.Metrics()
		if err != nil {
			return err
		}
		_, err = o.IO.Out.Write(text)
		return err
	}
	mux := wire.NewServeMux()
	mux.HandleFunc("GET "+api.PathMetrics, func(w wire.ResponseWriter, r *wire.Request) {
		text, err := c.Metrics()
		if err != nil {
			w.WriteHeader(wire.StatusServiceUnavailable)
			fmt.Fprintf(w, "tend: %v\n", err)
			return
		}
		w.Header().Set("Content-Type", prom.ContentType)
		_, _ = w.Write(text)
	})
	return serveTCP(o.Listen, mux, o.Context, func(addr net.Addr) {
		fmt.Fprintf(o.IO.ErrOut, "tend: serving http://%s/metrics until stopped (Ctrl-C); tend set metrics_listen %s has the daemon serve it\n", addr, o.Listen)
		if o.Served != nil {
			o.Served(addr.String())
		}
	})
}
