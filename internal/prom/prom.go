// Package prom writes figures in Prometheus' text exposition format (version 0.0.4), which every
// Prometheus-compatible scraper reads. It is the few lines of the format tend needs, so that the
// client library's init does not run on every CLI call.
package prom

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// ContentType is the format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Writer builds an exposition: each family's HELP and TYPE, then its samples.
type Writer struct {
	b bytes.Buffer
}

// Family starts a metric family; its samples follow.
func (w *Writer) Family(name, typ, help string) {
	w.b.WriteString("# HELP ")
	w.b.WriteString(name)
	w.b.WriteByte(' ')
	w.b.WriteString(escapeHelp(help))
	w.b.WriteString("\n# TYPE ")
	w.b.WriteString(name)
	w.b.WriteByte(' ')
	w.b.WriteString(typ)
	w.b.WriteByte('\n')
}

// Sample writes one sample; labels are name, value pairs.
func (w *Writer) Sample(name string, v float64, labels ...string) {
	w.b.WriteString(name)
	if len(labels) > 0 {
		w.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(labels[i])
			w.b.WriteString(`="`)
			w.b.WriteString(escapeLabel(labels[i+1]))
			w.b.WriteByte('"')
		}
		w.b.WriteByte('}')
	}
	w.b.WriteByte(' ')
	w.b.WriteString(formatValue(v))
	w.b.WriteByte('\n')
}

// Bytes is the exposition so far.
func (w *Writer) Bytes() []byte { return w.b.Bytes() }

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// escapeLabel escapes a label value: backslash, double quote and newline. (A function, not a
// strings.Replacer in a package variable: this package's init would run on every CLI call.)
func escapeLabel(s string) string { return escape(s, true) }

// escapeHelp escapes a HELP text: backslash and newline.
func escapeHelp(s string) string { return escape(s, false) }

func escape(s string, quote bool) string {
	if !strings.ContainsAny(s, "\\\n\"") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
