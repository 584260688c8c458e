package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/home"
	"github.com/tend-sh/tend/internal/logs"
)

// LogsOptions are logs' flags, as PM2 names them, and what logs runs with.
type LogsOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)
	// Context is how long logs follows: until SIGINT or SIGTERM in a real run.
	Context func() (context.Context, context.CancelFunc)
	// FollowEvery is how often a followed file is read; RescanEvery how often the list is
	// asked for apps started (or scaled) since.
	FollowEvery, RescanEvery time.Duration

	Target   string
	All      bool // no target: every process
	Lines    int
	NoStream bool
	Raw      bool
	ErrOnly  bool
	OutOnly  bool
	// JSON prints each line as PM2's --json does: {message, timestamp, type, process_id,
	// app_name}, with tend's instance; Format as PM2's --format: key=value fields.
	JSON, Format bool
	// Timestamp, when set, prefixes each line with the time it is printed in this format
	// (PM2's --timestamp; YYYY-MM-DD-HH:mm:ss without a value).
	Timestamp string
	// Now is the clock of --json and --timestamp.
	Now func() time.Time
}

type logSource struct {
	path   string
	prefix string
	isErr  bool

	id, instance int
	name         string
}

// structuredLine is a line as PM2's logs --json prints it (with tend's instance), or as its
// --format does.
func structuredLine(s logSource, line []byte, asJSON bool, stamp *logs.DateFormat, now time.Time) []byte {
	typ := "out"
	if s.isErr {
		typ = "err"
	}
	if asJSON {
		b, _ := json.Marshal(struct {
			Message   string `json:"message"`
			Timestamp string `json:"timestamp"`
			Type      string `json:"type"`
			ProcessID int    `json:"process_id"`
			AppName   string `json:"app_name"`
			Instance  int    `json:"instance"`
		}{string(line), now.UTC().Format("2006-01-02T15:04:05.000Z"), typ, s.id, s.name, s.instance})
		return append(b, '\n')
	}
	if typ == "err" {
		typ = "error" // PM2's word in --format
	}
	b := fmt.Appendf(nil, "timestamp=%s app=%s id=%d type=%s message=", stamp.Append(nil, now), s.name, s.id, typ)
	return append(append(b, line...), '\n')
}

// NewCmdLogs builds `tend logs`.
func NewCmdLogs(f *Factory, runF func(*LogsOptions) error) *cobra.Command {
	o := &LogsOptions{
		IO: f.IO, Client: f.Client, FollowEvery: 200 * time.Millisecond, RescanEvery: time.Second, Now: time.Now,
		Context: func() (context.Context, context.CancelFunc) {
			return signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
		},
	}
	cmd := &cobra.Command{
		Use:     "logs [name|id|all]",
		Aliases: []string{"log"},
		Short:   "Show the last lines of an app's logs, then follow them",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Lines < 0 {
				return usagef("--lines must not be negative, got %d", o.Lines)
			}
			o.Target, o.All = optionalTarget(args)
			if runF != nil {
				return runF(o)
			}
			return logsRun(o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Lines, "lines", 15, "how many past lines to show per file")
	fl.BoolVar(&o.NoStream, "nostream", false, "print the past lines and exit")
	fl.BoolVar(&o.Raw, "raw", false, "print lines without the id|name prefix")
	fl.BoolVar(&o.ErrOnly, "err", false, "only the error log")
	fl.BoolVar(&o.OutOnly, "out", false, "only the output log")
	fl.BoolVar(&o.JSON, "json", false, "each line as a JSON object: message, timestamp, type, process_id, app_name, instance")
	fl.BoolVar(&o.Format, "format", false, "each line as key=value fields: timestamp, app, id, type, message")
	fl.StringVar(&o.Timestamp, "timestamp", "", "prefix each line with the time it is printed, in this format (YYYY-MM-DD-HH:mm:ss without one)")
	fl.Lookup("timestamp").NoOptDefVal = "YYYY-MM-DD-HH:mm:ss"
	return cmd
}

// logsRun prints the last lines of each selected log file, then follows them.
func logsRun(o *LogsOptions) error {
	if o.JSON && o.Format {
		return usagef("--json and --format are two ways to print the lines: choose one")
	}
	var stamp *logs.DateFormat
	if o.Timestamp != "" || o.Format {
		layout := o.Timestamp
		if layout == "" {
			layout = "YYYY-MM-DD-HH:mm:ssZZ" // PM2's --format
		}
		var err error
		if stamp, err = logs.ParseDateFormat(layout); err != nil {
			return usagef("--timestamp %q: %v", o.Timestamp, err)
		}
	}
	sel, err := selected(o.Client, o.Target, o.All)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	print := func(s logSource, line []byte) {
		mu.Lock()
		defer mu.Unlock()
		if o.JSON || o.Format {
			o.IO.Out.Write(structuredLine(s, line, o.JSON, stamp, o.Now()))
			return
		}
		if stamp != nil {
			fmt.Fprintf(o.IO.Out, "%s ", stamp.Append(nil, o.Now()))
		}
		switch {
		case o.Raw:
			fmt.Fprintf(o.IO.Out, "%s\n", line)
		case o.IO.ColorEnabled() && s.isErr:
			fmt.Fprintf(o.IO.Out, "%s%s%s%s\n", ansiRed, s.prefix, line, ansiReset)
		default:
			fmt.Fprintf(o.IO.Out, "%s%s\n", s.prefix, line)
		}
	}
	seen := map[string]bool{}
	sources := o.sources(sel, seen)
	offsets := make([]int64, len(sources))
	for i, s := range sources {
		lines, end, err := logs.Tail(s.path, o.Lines)
		if err != nil {
			return fmt.Errorf("read %s: %v", s.path, err)
		}
		offsets[i] = end
		if o.Lines == 0 {
			continue
		}
		if !o.Raw && !o.JSON && !o.Format {
			fmt.Fprintf(o.IO.Out, "%s last %d lines:\n", s.path, o.Lines)
		}
		for _, l := range lines {
			print(s, []byte(l))
		}
	}
	if o.NoStream {
		return nil
	}
	ctx, stop := o.Context()
	defer stop()
	var wg sync.WaitGroup
	follow := func(s logSource, from int64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = logs.Follow(ctx, s.path, from, o.FollowEvery, func(line []byte) { print(s, line) })
		}()
	}
	for i, s := range sources {
		follow(s, offsets[i])
	}
	// Apps started (or scaled) after we began are followed too, from their first line.
	tick := time.NewTicker(o.RescanEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.C:
		}
		if sel, err := selected(o.Client, o.Target, o.All); err == nil {
			for _, s := range o.sources(sel, seen) {
				follow(s, 0)
			}
		}
	}
}

// sources lists the log files of the selected processes that are not in seen yet, and adds them.
func (o *LogsOptions) sources(sel []api.Process, seen map[string]bool) []logSource {
	width := 0
	for _, p := range sel {
		width = max(width, len(p.Name))
	}
	var out []logSource
	for _, p := range sel {
		prefix := fmt.Sprintf("%d|%-*s | ", p.PmID, width, p.Name)
		add := func(path string, isErr bool) {
			if path == "" || path == "/dev/null" || seen[path] {
				return
			}
			seen[path] = true
			out = append(out, logSource{path: path, prefix: prefix, isErr: isErr, id: p.PmID, name: p.Name, instance: p.Pm2Env.NodeAppInstance})
		}
		if !o.ErrOnly {
			add(p.Pm2Env.PmOutLogPath, false)
		}
		if !o.OutOnly {
			add(p.Pm2Env.PmErrLogPath, true)
		}
	}
	return out
}

// FlushOptions are flush's.
type FlushOptions struct {
	IO        *IOStreams
	Client    func() (client.API, error)
	DaemonLog string // tend.log, emptied too when no target is given

	Target string
	All    bool // no target: every app's logs, and DaemonLog
}

// NewCmdFlush builds `tend flush`.
func NewCmdFlush(f *Factory, runF func(*FlushOptions) error) *cobra.Command {
	opts := &FlushOptions{IO: f.IO, Client: f.Client, DaemonLog: home.At(f.Home).Log}
	return &cobra.Command{
		Use:   "flush [name|id|all]",
		Short: "Empty the log files of an app (of every app, and tend.log, without an argument)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target, opts.All = optionalTarget(args)
			if runF != nil {
				return runF(opts)
			}
			return flushRun(opts)
		},
	}
}

func flushRun(opts *FlushOptions) error {
	sel, err := selected(opts.Client, opts.Target, opts.All)
	if err != nil {
		return err
	}
	paths := map[string]bool{}
	for _, p := range sel {
		for _, path := range []string{p.Pm2Env.PmOutLogPath, p.Pm2Env.PmErrLogPath, p.Pm2Env.PmLogPath} {
			if path != "" && path != "/dev/null" {
				paths[path] = true
			}
		}
	}
	if opts.All {
		paths[opts.DaemonLog] = true
	}
	// The daemon appends with O_APPEND, so truncating under it is safe.
	for _, path := range slices.Sorted(maps.Keys(paths)) {
		if err := os.Truncate(path, 0); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("flush %s: %v", path, err)
		}
		fmt.Fprintln(opts.IO.Out, "flushed "+path)
	}
	return nil
}
