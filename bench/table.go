package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Direct is the column of the same app run without any manager: the physical limit.
const Direct = "direct"

type row struct {
	n                 int
	app, figure, unit string
	vals              map[string][]float64
	notes             map[string]string
}

// table collects samples per (workload, figure, peer) and prints their medians.
type table struct {
	cols []string
	rows []*row
}

func newTable(peers []Peer) *table {
	t := &table{}
	for _, p := range peers {
		t.cols = append(t.cols, p.Name())
	}
	t.cols = append(t.cols, Direct)
	return t
}

func (t *table) row(n int, app, figure, unit string) *row {
	for _, r := range t.rows {
		if r.n == n && r.app == app && r.figure == figure {
			if r.unit == "" {
				r.unit = unit // the row was made by a note, which has no unit
			}
			return r
		}
	}
	r := &row{n: n, app: app, figure: figure, unit: unit, vals: map[string][]float64{}, notes: map[string]string{}}
	t.rows = append(t.rows, r)
	return r
}

// add records one sample per peer.
func (t *table) add(n int, app, figure, unit string, vals map[string]float64) {
	r := t.row(n, app, figure, unit)
	for k, v := range vals {
		r.vals[k] = append(r.vals[k], v)
	}
}

// note says why a peer has no figure ("no shared port", "no reload").
func (t *table) note(n int, app, figure, unit, peer, why string) {
	t.row(n, app, figure, unit).notes[peer] = why
}

// isCount marks units whose figures are counts of failures: a ratio of those says nothing.
func isCount(unit string) bool { return unit == "lines" || unit == "requests" || unit == "connections" }

func format(v float64, unit string) string {
	if isCount(unit) || unit == "req/s" {
		return strconv.FormatFloat(v, 'f', 0, 64) + " " + unit
	}
	prec := 2
	switch {
	case v >= 100:
		prec = 0
	case v >= 10:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + unit
}

// render prints a markdown table: the median of each cell, and next to each peer's figure the
// ratio tend/peer.
func (t *table) render(w io.Writer) {
	head := append([]string{"#", "workload", "figure"}, t.cols...)
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat(" --- |", len(head)))
	for _, r := range t.rows {
		cells := []string{strconv.Itoa(r.n), r.app, r.figure}
		tendVals, tendOK := r.vals[t.cols[0]]
		for i, c := range t.cols {
			vals, ok := r.vals[c]
			switch {
			case r.notes[c] != "":
				cells = append(cells, r.notes[c])
			case !ok:
				cells = append(cells, "")
			case i == 0 || !tendOK || median(vals) == 0 || isCount(r.unit):
				cells = append(cells, format(median(vals), r.unit))
			case c == Direct && len(vals) == len(tendVals) && len(vals) >= minRounds:
				cells = append(cells, format(median(vals), r.unit)+" ("+directRatio(tendVals, vals)+")")
			default:
				ratio := median(tendVals) / median(vals)
				cells = append(cells, fmt.Sprintf("%s (%s×)", format(median(vals), r.unit), strconv.FormatFloat(ratio, 'g', 2, 64)))
			}
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Medians of interleaved runs; (r×) after a peer's figure is tend's figure divided by it. Against")
	fmt.Fprintf(w, "direct, with %d runs or more, it is the median of each run's ratio, unless direct itself varied by more\n", minRounds)
	fmt.Fprintf(w, "than %.0f %% from run to run: such a run is too noisy to judge, and says so.\n", maxSpread*100)
}

// minRounds is how many runs give tend's ratio to direct as the median of per-run ratios.
const minRounds = 5

// maxSpread is how much direct may vary from run to run, (max-min)/median, before a ratio to it
// means nothing: two identical direct setups have differed by 12 % on a 2-core machine.
const maxSpread = 0.10

// directRatio is tend's ratio to direct: the median of each run's tend/direct, run i of tend
// beside run i of direct (the same round), or "too noisy" when direct's own spread says the
// machine did not hold still.
func directRatio(tend, direct []float64) string {
	lo, hi := direct[0], direct[0]
	ratios := make([]float64, len(tend))
	for i := range tend {
		lo, hi = min(lo, direct[i]), max(hi, direct[i])
		ratios[i] = tend[i] / direct[i]
	}
	if spread := (hi - lo) / median(direct); spread > maxSpread {
		return fmt.Sprintf("too noisy to judge: direct varied %.0f %%", spread*100)
	}
	return strconv.FormatFloat(median(ratios), 'f', 3, 64) + "×"
}
