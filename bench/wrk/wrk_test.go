package wrk

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fixtures are real wrk 4.1 outputs recorded by testdata/capture.sh; the comment on each case
// is the wrk command that produced it. These tests never run wrk.
func TestParseFixtures(t *testing.T) {
	us, ms := time.Microsecond, time.Millisecond
	tests := []struct {
		file string
		want Result // Raw is filled in by the test
	}{
		// -t2 -c64 -d2s
		{"clean.txt", Result{Requests: 100840, RequestsPerSec: 50265.71,
			LatencyAvg: 1570 * us, LatencyMax: 16180 * us}},
		// -t2 -c64 -d2s -H 'Connection: close'
		{"clean-close.txt", Result{Requests: 24817, RequestsPerSec: 12197.57,
			LatencyAvg: 3900 * us, LatencyMax: 16320 * us}},
		// -t1 -c8 -d1s --latency: the distribution block has its own "Latency" heading.
		{"latency-flag.txt", Result{Requests: 37857, RequestsPerSec: 37824.96,
			LatencyAvg: 647850 * time.Nanosecond, LatencyMax: 66660 * us}},
		// -t2 -c16 -d2s against a server answering every other request with 503.
		{"non2xx.txt", Result{Requests: 59378, RequestsPerSec: 29596.14, Non2xx: 29689,
			LatencyAvg: 1 * ms, LatencyMax: 32390 * us}},
		// -t1 -c4 -d1s against a server closing every connection unanswered: nothing completes,
		// the latency line reads 0.00us with a -nan% column.
		{"reset.txt", Result{Requests: 0, RequestsPerSec: 0, ReadErrors: 11989}},
		// -t2 -c16 -d2s against a server that stops listening after 1 s: the open connections
		// fail on read, and the refused reconnects count as write errors.
		{"dies.txt", Result{Requests: 35882, RequestsPerSec: 17839.01, ReadErrors: 16, WriteErrors: 58397,
			LatencyAvg: 620710 * time.Nanosecond, LatencyMax: 11540 * us}},
		// ulimit -n 40; -t1 -c64 -d1s: 29 connections get no socket.
		{"connect.txt", Result{Requests: 39715, RequestsPerSec: 39487.75, ConnectErrors: 29,
			LatencyAvg: 784230 * time.Nanosecond, LatencyMax: 8450 * us}},
		// -t1 -c4 -d3s --timeout 1s against 1.5 s responses: wrk counts the late responses as
		// completed but keeps them out of the latency figures.
		{"timeout.txt", Result{Requests: 8, RequestsPerSec: 2.66, TimeoutErrors: 8}},
		// -t1 -c4 -d3s --timeout 5s against 1.2 s responses: latency in seconds.
		{"seconds.txt", Result{Requests: 8, RequestsPerSec: 2.66,
			LatencyAvg: 1200 * ms, LatencyMax: 1200 * ms}},
		// -t1 -c1 -d63s --timeout 2m against a 61 s response: latency in minutes.
		{"minutes.txt", Result{Requests: 1, RequestsPerSec: 0.02,
			LatencyAvg: 61200 * ms, LatencyMax: 61200 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out := readFixture(t, tt.file)
			got, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Raw = out
			if !reflect.DeepEqual(got, tt.want) {
				got.Raw, tt.want.Raw = "", ""
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	clean := readFixture(t, "clean.txt")
	tests := []struct {
		name    string
		out     string
		wantErr []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"blank", " \n\n", []string{"empty"}},
		// Real: wrk's start-up connect to a port nobody listens on; it prints this on stderr
		// and exits 1.
		{"refused", readFixture(t, "refused.txt"), []string{
			`no "Latency", "N requests in", "Requests/sec:" line`, "unable to connect to 127.0.0.1:"}},
		// wrk killed mid-run: the header is there, the summary is not.
		{"truncated", firstLines(clean, 4), []string{
			`no "N requests in", "Requests/sec:" line`, `starts with "Running 2s test @`}},
		{"no rate", strings.Replace(clean, "Requests/sec:", "Requests/min:", 1), []string{
			`no "Requests/sec:" line`}},
		{"bad latency unit", strings.Replace(clean, "1.57ms", "1.57xs", 1), []string{
			`"1.57xs"`, "unit is not us, ms, s or m"}},
		{"bad latency number", strings.Replace(clean, "1.57ms", "-nanms", 1), []string{`"-nanms"`}},
		{"bad request count", strings.Replace(clean, "100840 requests", "1e5 requests", 1), []string{
			`"1e5 requests in 2.01s, 11.73MB read"`}},
		{"bad rate", strings.Replace(clean, "50265.71", "NaN", 1), []string{"Requests/sec:", "finite"}},
		{"bad socket errors", strings.Replace(readFixture(t, "dies.txt"), "write 58397", "write x", 1), []string{
			"Socket errors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.out)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestParseLatency(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0.00us", 0},
		{"849.99us", 849990 * time.Nanosecond},
		{"0.90ms", 900 * time.Microsecond},
		{"50.99s", 50990 * time.Millisecond},
		{"1.02m", 61200 * time.Millisecond},
	}
	for _, tt := range tests {
		got, err := parseLatency(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseLatency(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "us", "1.0", "1.0h", "-1.00ms", "1..2s"} {
		if got, err := parseLatency(in); err == nil {
			t.Errorf("parseLatency(%q) = %v, want an error", in, got)
		}
	}
}

func TestArgs(t *testing.T) {
	const url = "http://127.0.0.1:8080/"
	tests := []struct {
		name    string
		o       Options
		want    []string
		wantErr string
	}{
		{"defaults", Options{URL: url}, []string{url}, ""},
		{"all", Options{URL: url, Threads: 2, Connections: 64, Duration: 5 * time.Second,
			Timeout: 2 * time.Minute, NewConnPerRequest: true},
			[]string{"-t", "2", "-c", "64", "-d", "5s", "--timeout", "120s", "-H", "Connection: close", url}, ""},
		{"no url", Options{Threads: 1}, nil, "URL is required"},
		{"sub-second duration", Options{URL: url, Duration: 1500 * time.Millisecond}, nil, "-d 1.5s: wrk takes whole seconds"},
		{"sub-second timeout", Options{URL: url, Timeout: 500 * time.Millisecond}, nil, "--timeout 500ms"},
		{"negative", Options{URL: url, Connections: -1}, nil, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.o.args()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("args() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("args() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[:n], "")
}
