package scenarios

import (
	"strings"
	"testing"
)

const steadyBase = `name: t
task: bench.job.process
load:
  - steady: {rate: 1000/s, for: 5s}
`

func TestSLOParses(t *testing.T) {
	doc := steadyBase + `slo: {rate: 1000/s, "p99(end_to_end)": 250ms, "peak(worker_rss)": 128MiB, complete_per_s: 900}` + "\n"
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.SLO == nil || s.SLO.Rate != 1000 || len(s.SLO.Objectives) != 3 {
		t.Fatalf("SLO = %+v", s.SLO)
	}
	want := []struct {
		metric string
		target float64
	}{{"p99(end_to_end)", 0.25}, {"peak(worker_rss)", 128 << 20}, {"complete_per_s", 900}}
	for i, w := range want {
		if o := s.SLO.Objectives[i]; o.Metric != w.metric || o.Target != w.target {
			t.Errorf("objective %d = %+v, want %s %g", i, o, w.metric, w.target)
		}
	}
	if got := s.SLO.Describe(); got != "1000.0/s, p99(end_to_end) ≤ 250ms, peak(worker_rss) ≤ 128MiB, complete_per_s ≥ 900" {
		t.Errorf("Describe = %q", got)
	}
}

func TestSLOErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown metric lists the names", `slo: {"p99(end2end)": 250ms}`, "5:7: slo: did you mean p99(end_to_end)? p99(end2end) is not a metric an objective can name; want rate or one of unconfirmed,"},
		{"metric that judges nothing", `slo: {published: 5}`, "5:7: slo: published is not a metric an objective can name"},
		{"unit that does not fit", `slo: {"p99(end_to_end)": 250MiB}`, `5:26: slo.p99(end_to_end): p99(end_to_end) is a duration: unit "MiB"`},
		{"bad rate", `slo: {rate: fast}`, "5:13: slo.rate:"},
		{"empty", `slo: {}`, "5:6: slo: names no objective"},
		{"rate above the load", `slo: {rate: 5000/s}`, "5:6: slo.rate 5000.0/s is above the load's highest rate 1000.0/s"},
		{"search range backwards", "search: {rate: {from: 500/s, to: 100/s}}", "5:34: search.rate.to: must be above from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(steadyBase+tt.doc+"\n"), nil)
			if err == nil || !strings.Contains(err.Error(), "s.yaml:"+tt.want) {
				t.Errorf("error = %v\nwant s.yaml:%s", err, tt.want)
			}
		})
	}
}

func TestSearchDrivesTheRate(t *testing.T) {
	doc := steadyBase + "slo: {rate: 5000/s}\nsearch: {rate: {from: 100/s, to: 8000/s}, settle: 1s}\n"
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Search.Enabled() || s.Search.Rate.From != 100 || s.Search.Settle.Seconds() != 1 || s.Search.Measure != defaultMeasure {
		t.Errorf("Search = %+v", s.Search)
	}
}
