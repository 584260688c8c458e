// Package faults is tend's fault suite: each test does to tend what a hostile app, a hostile
// client or a bad day does (kill -9, SIGSTOP, floods, a full disk, a crash loop, half-open
// connections), and reports what was lost or allowed. The expected answer is nothing: a loss
// fails the test.
//
// The README's test command runs the short version. `make faults` runs the full one
// (TEND_FAULTS=full: more kills, more lines, more calls) and prints the table of every fault.
package faults

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/tend-sh/tend/test/e2e"
)

func TestMain(m *testing.M) {
	code := e2e.Run(m)
	printTable(os.Stdout)
	os.Exit(code)
}

// full is the scale `make faults` runs.
var full = os.Getenv("TEND_FAULTS") == "full"

// scale is short in the README's test command, long in `make faults`.
func scale(short, long int) int {
	if full {
		return long
	}
	return short
}

// A row says what one fault cost.
type row struct {
	fault, cost string
	lost        bool
}

var (
	rowsMu sync.Mutex
	rows   []row
)

// lost reports n things of what lost to the fault ("failed requests of 12,345 sent"); anything
// lost fails the test.
func lost(t *testing.T, fault string, n int64, what string) {
	t.Helper()
	record(t, row{fault, fmt.Sprintf("%d %s", n, what), n != 0})
}

// allowed reports what a bound let through or what the fault cost in time, which is no loss
// ("64 sockets of 1,000 asked", "slowest jlist 40 ms").
func allowed(t *testing.T, fault, what string, args ...any) {
	t.Helper()
	record(t, row{fault, fmt.Sprintf(what, args...), false})
}

func record(t *testing.T, r row) {
	t.Helper()
	t.Logf("%s: %s", r.fault, r.cost)
	if r.lost {
		t.Errorf("%s lost %s; the expected answer is nothing", r.fault, r.cost)
	}
	rowsMu.Lock()
	defer rowsMu.Unlock()
	rows = append(rows, r)
}

// printTable prints every row, by fault, once the tests are done.
func printTable(w io.Writer) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a.fault, b.fault) })
	mode := "short"
	if full {
		mode = "full"
	}
	fmt.Fprintf(w, "\nfaults (%s): what each lost or allowed\n", mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		verdict := "ok"
		if r.lost {
			verdict = "LOST"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.fault, r.cost, verdict)
	}
	tw.Flush()
}
