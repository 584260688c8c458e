// Package wrk runs the wrk HTTP load generator and parses the summary it prints.
//
// Parse is written against wrk 4.1 (the Debian package); testdata/ holds real outputs of that
// version, and testdata/capture.sh regenerates them.
package wrk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Options are the wrk flags the harness uses. A zero Threads, Connections, Duration or Timeout
// leaves the flag out, so wrk's own default applies (2 threads, 10 connections, 10 s, 2 s).
type Options struct {
	URL         string        // http://127.0.0.1:PORT/
	Threads     int           // -t
	Connections int           // -c; wrk requires Connections >= Threads
	Duration    time.Duration // -d; whole seconds, as wrk takes no smaller unit
	Timeout     time.Duration // --timeout; whole seconds, like Duration
	// NewConnPerRequest adds -H "Connection: close": the server closes each connection after
	// its response and wrk opens a new one for the next request, which measures accept and
	// connection setup rather than keep-alive throughput.
	NewConnPerRequest bool
}

// Result is wrk's summary. Requests and RequestsPerSec count every completed response,
// Non-2xx ones included; the error counters say how many went wrong.
type Result struct {
	Requests       int64 // total requests completed
	RequestsPerSec float64
	// Socket errors, from "Socket errors: connect N, read N, write N, timeout N" (0 when wrk
	// omits the line, which it does when all four are 0). Over plain HTTP wrk counts a
	// connect error only when connect() fails at once (out of fds or ports); a refused
	// connection shows up as a write error instead.
	ConnectErrors, ReadErrors, WriteErrors, TimeoutErrors int64
	Non2xx                                                int64 // "Non-2xx or 3xx responses: N"
	// LatencyAvg and LatencyMax cover only responses that came within the timeout: wrk does not
	// record the others (they are in TimeoutErrors). Both are 0 when no response came in time.
	LatencyAvg, LatencyMax time.Duration
	Raw                    string // wrk's stdout, as printed
}

// interruptGrace is how long Run waits for wrk to print its summary after interrupting it.
// wrk notices SIGINT within about 100 ms (its threads check a stop flag on each rate sample).
const interruptGrace = 5 * time.Second

// Run runs wrk (found on $PATH) with o and parses its summary.
//
// If ctx ends before the run does, Run interrupts wrk with SIGINT, which makes wrk stop and print
// what it measured so far, and returns that partial Result together with an error wrapping
// ctx.Err(). wrk is killed if it has not exited interruptGrace after the interrupt.
//
// When wrk fails (for example "unable to connect", exit status 1), the error carries its stderr.
func Run(ctx context.Context, o Options) (Result, error) {
	args, err := o.args()
	if err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = interruptGrace
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	res, parseErr := Parse(stdout.String())
	command := "wrk " + strings.Join(args, " ")
	switch {
	case ctx.Err() != nil:
		// A summary printed after SIGINT is still worth returning; parseErr is dropped because
		// ctx's error already explains why it may be missing.
		return res, fmt.Errorf("%s: interrupted: %w", command, ctx.Err())
	case runErr != nil:
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return res, fmt.Errorf("%s: %w: %s", command, runErr, msg)
		}
		return res, fmt.Errorf("%s: %w", command, runErr)
	case parseErr != nil:
		return res, fmt.Errorf("%s: %w", command, parseErr)
	}
	return res, nil
}

// args builds wrk's command line, refusing what wrk would reject less clearly: its time
// arguments are whole numbers of seconds, minutes or hours, so "1500ms" is a usage error there.
func (o Options) args() ([]string, error) {
	if o.URL == "" {
		return nil, errors.New("wrk: URL is required")
	}
	if o.Threads < 0 || o.Connections < 0 {
		return nil, fmt.Errorf("wrk: threads (%d) and connections (%d) must not be negative", o.Threads, o.Connections)
	}
	var args []string
	if o.Threads > 0 {
		args = append(args, "-t", strconv.Itoa(o.Threads))
	}
	if o.Connections > 0 {
		args = append(args, "-c", strconv.Itoa(o.Connections))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"-d", o.Duration}, {"--timeout", o.Timeout}} {
		if d.v == 0 {
			continue
		}
		if d.v < 0 || d.v%time.Second != 0 {
			return nil, fmt.Errorf("wrk: %s %v: wrk takes whole seconds", d.flag, d.v)
		}
		args = append(args, d.flag, fmt.Sprintf("%ds", d.v/time.Second))
	}
	if o.NewConnPerRequest {
		args = append(args, "-H", "Connection: close")
	}
	return append(args, o.URL), nil
}

// Parse reads the summary wrk 4.x prints on stdout:
//
//	Running 2s test @ http://127.0.0.1:36451/
//	  2 threads and 64 connections
//	  Thread Stats   Avg      Stdev     Max   +/- Stdev
//	    Latency     2.21ms    2.32ms  15.38ms   85.76%
//	    Req/Sec    17.43k     2.66k   24.75k    77.50%
//	  69500 requests in 2.02s, 8.09MB read
//	  Socket errors: connect 0, read 16, write 70352, timeout 0
//	  Non-2xx or 3xx responses: 34104
//	Requests/sec:  34334.08
//	Transfer/sec:      3.99MB
//
// The Latency, "N requests in" and Requests/sec lines are required; "Socket errors" and
// "Non-2xx" are optional because wrk prints them only when their counts are not zero. Other lines
// (--latency's distribution, a Lua script's output) are ignored. The error for an output that
// lacks a required line names every missing line.
func Parse(out string) (Result, error) {
	r := Result{Raw: out}
	if strings.TrimSpace(out) == "" {
		return r, errors.New("wrk output is empty")
	}
	var haveLatency, haveRequests, haveRate bool
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		f := strings.Fields(line)
		var err error
		switch {
		// "Latency  avg stdev max within%". The field count keeps out --latency's
		// "Latency Distribution" heading.
		case len(f) == 5 && f[0] == "Latency":
			if r.LatencyAvg, err = parseLatency(f[1]); err == nil {
				r.LatencyMax, err = parseLatency(f[3])
			}
			haveLatency = true
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			r.Requests, err = strconv.ParseInt(f[0], 10, 64)
			haveRequests = true
		case strings.HasPrefix(line, "Socket errors:"):
			var n int
			n, err = fmt.Sscanf(line, "Socket errors: connect %d, read %d, write %d, timeout %d",
				&r.ConnectErrors, &r.ReadErrors, &r.WriteErrors, &r.TimeoutErrors)
			if err == nil && n != 4 {
				err = fmt.Errorf("read %d of 4 counts", n)
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			_, err = fmt.Sscanf(line, "Non-2xx or 3xx responses: %d", &r.Non2xx)
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.RequestsPerSec, err = strconv.ParseFloat(f[1], 64)
			if err == nil && (math.IsNaN(r.RequestsPerSec) || math.IsInf(r.RequestsPerSec, 0)) {
				err = errors.New("not a finite number")
			}
			haveRate = true
		}
		if err != nil {
			return r, fmt.Errorf("wrk output: line %q: %w", line, err)
		}
	}

	var missing []string
	if !haveLatency {
		missing = append(missing, `"Latency"`)
	}
	if !haveRequests {
		missing = append(missing, `"N requests in"`)
	}
	if !haveRate {
		missing = append(missing, `"Requests/sec:"`)
	}
	if len(missing) > 0 {
		// The first line usually says what happened instead ("unable to connect to …", usage).
		first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		return r, fmt.Errorf("wrk output has no %s line (it starts with %q)", strings.Join(missing, ", "), first)
	}
	return r, nil
}

// latencyUnits are the units wrk's format_time_us prints. It never prints "h": its unit tables
// never reach their last entry, so hours show as minutes.
var latencyUnits = map[string]time.Duration{
	"us": time.Microsecond,
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
}

// parseLatency reads a wrk latency such as "684.73us", "2.21ms", "1.20s" or "1.02m".
func parseLatency(s string) (time.Duration, error) {
	// wrk prints "%.2Lf" then the unit, so the unit starts at the first letter.
	i := strings.IndexFunc(s, unicode.IsLetter)
	if i < 0 {
		return 0, fmt.Errorf("bad latency %q: no unit", s)
	}
	unit, ok := latencyUnits[s[i:]]
	if !ok {
		return 0, fmt.Errorf("bad latency %q: unit is not us, ms, s or m", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad latency %q", s)
	}
	return time.Duration(math.Round(v * float64(unit))), nil
}
