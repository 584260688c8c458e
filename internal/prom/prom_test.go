package prom

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What the writer escapes, Prometheus' own parser reads back as it was.
func TestWriterRoundTrip(t *testing.T) {
	var w Writer
	w.Family("tend_x", "gauge", "help with \\ and\na newline")
	odd := "a \"quoted\" \\ name\nwith a newline"
	w.Sample("tend_x", 1.5, "app", odd, "id", "0")
	w.Sample("tend_x", math.Inf(1), "app", "inf")
	w.Sample("tend_x", math.NaN(), "app", "nan")
	w.Family("tend_y_total", "counter", "a counter")
	w.Sample("tend_y_total", 3)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(w.Bytes())))
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Bytes())
	}
	x := fams["tend_x"]
	if x.GetHelp() != "help with \\ and\na newline" || len(x.Metric) != 3 {
		t.Fatalf("family %v", x)
	}
	if l := x.Metric[0].Label; l[0].GetValue() != odd || x.Metric[0].GetGauge().GetValue() != 1.5 {
		t.Errorf("first sample %v", x.Metric[0])
	}
	if !math.IsInf(x.Metric[1].GetGauge().GetValue(), 1) || !math.IsNaN(x.Metric[2].GetGauge().GetValue()) {
		t.Errorf("inf and nan: %v", x.Metric)
	}
	if fams["tend_y_total"].Metric[0].GetCounter().GetValue() != 3 {
		t.Errorf("counter %v", fams["tend_y_total"])
	}
}
