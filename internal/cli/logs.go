package cli

import (
	"context"
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
	"github.com/tend-sh/tend/internal/daemon"
	"github.com/tend-sh/tend/internal/logs"
)

// LogsOptions are logs' flags, as PM2 names them.
type LogsOptions struct {
	Lines    int
	NoStream bool
	Raw      bool
	ErrOnly  bool
	OutOnly  bool
}

type logSource struct {
	path   string
	prefix string
	isErr  bool
}

func newLogsCmd(env *Env) *cobra.Command {
	o := &LogsOptions{}
	cmd := &cobra.Command{
		Use:     "logs [name|id|all]",
		Aliases: []string{"log"},
		Short:   "Show the last lines of an app's logs, then follow them",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Lines < 0 {
				return usagef("--lines must not be negative, got %d", o.Lines)
			}
			return runLogs(env, o, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Lines, "lines", 15, "how many past lines to show per file")
	f.BoolVar(&o.NoStream, "nostream", false, "print the past lines and exit")
	f.BoolVar(&o.Raw, "raw", false, "print lines without the id|name prefix")
	f.BoolVar(&o.ErrOnly, "err", false, "only the error log")
	f.BoolVar(&o.OutOnly, "out", false, "only the output log")
	return cmd
}

func runLogs(env *Env, o *LogsOptions, args []string) error {
	sel, err := selected(env, args)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	print := func(s logSource, line []byte) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case o.Raw:
			fmt.Fprintf(env.IO.Out, "%s\n", line)
		case env.IO.OutIsTTY && s.isErr:
			fmt.Fprintf(env.IO.Out, "%s%s%s%s\n", ansiRed, s.prefix, line, ansiReset)
		default:
			fmt.Fprintf(env.IO.Out, "%s%s\n", s.prefix, line)
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
		if !o.Raw {
			fmt.Fprintf(env.IO.Out, "%s last %d lines:\n", s.path, o.Lines)
		}
		for _, l := range lines {
			print(s, []byte(l))
		}
	}
	if o.NoStream {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	follow := func(s logSource, from int64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = logs.Follow(ctx, s.path, from, 200*time.Millisecond, func(line []byte) { print(s, line) })
		}()
	}
	for i, s := range sources {
		follow(s, offsets[i])
	}
	// Apps started (or scaled) after we began are followed too, from their first line.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.C:
		}
		if sel, err := selected(env, args); err == nil {
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
			out = append(out, logSource{path: path, prefix: prefix, isErr: isErr})
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

func newFlushCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "flush [name|id|all]",
		Short: "Empty the log files of an app (of every app, and tend.log, without an argument)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := selected(env, args)
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
			if len(args) == 0 {
				paths[daemon.PathsFor(env.Home).Log] = true
			}
			// The daemon appends with O_APPEND, so truncating under it is safe.
			for _, path := range slices.Sorted(maps.Keys(paths)) {
				if err := os.Truncate(path, 0); err != nil && !os.IsNotExist(err) {
					return fmt.Errorf("flush %s: %v", path, err)
				}
				fmt.Fprintln(env.IO.Out, "flushed "+path)
			}
			return nil
		},
	}
}
