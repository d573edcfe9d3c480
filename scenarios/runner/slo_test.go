package runner

import (
	"strings"
	"testing"

	"github.com/benchmq/bench/report"
)

// The console ends with the answer: the recommendation, the meeting
// variants cheapest first, and why the others miss; a harness-bound
// variant's caveat is said once, by its warning.
func TestConsoleAnswer(t *testing.T) {
	slo := &report.SLO{Rate: 1000, Objectives: []report.Objective{{Metric: "p99(end_to_end)", Target: 0.25, Source: "250ms"}}}
	mk := func(name string, p99, cpu float64, harness bool) report.Variant {
		v := report.Variant{Name: name, LatencyMS: report.Latencies{EndToEnd: report.Summary{Count: 10000, P99: p99}},
			Ledger: report.Ledger{Published: 10000, Finished: 10000}, Throughput: report.Throughput{PublishPerS: 1000, CompletePerS: 1000},
			WorkerCPUSeconds: cpu, HarnessBound: harness, LateSends: 7, Peak: report.Peak{WorkerCPUCores: 0.5}}
		v.SLO = slo.Judge(&v, 2, 8)
		return v
	}
	r := &report.Result{SLO: slo, Variants: []report.Variant{mk("dear", 100, 9, false), mk("cheap", 120, 4, true), mk("slow", 900, 1, false)}}
	var b strings.Builder
	PrintCapacity(&b, report.PlanCapacity(r))
	out := b.String()
	for _, want := range []string{"SLO 1000.0/s, p99(end_to_end) ≤ 250ms\n", "recommendation: cheap\n", "  1. cheap: 0.400 CPU-s per 1k jobs",
		"  2. dear: 0.900 CPU-s", "  misses slow: p99(end_to_end) 900.00 ms, target ≤ 250.00 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printVerdict(&b, &r.Variants[1])
	if got := b.String(); !strings.HasPrefix(got, "  slo meets: completes 1000.0/s") || strings.Contains(got, "caveat") {
		t.Errorf("harness-bound verdict:\n%s", got)
	}
	b.Reset()
	printVerdict(&b, &r.Variants[2])
	if got := b.String(); !strings.HasPrefix(got, "  slo MISSES:") {
		t.Errorf("missing verdict:\n%s", got)
	}
}
