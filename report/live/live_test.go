package live

import (
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/benchmq/bench/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every live metric and series has a valid Prometheus name of its own.
func TestNames(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	seen := map[string]string{}
	for _, m := range report.Metrics() {
		if m.Live == report.AtEnd {
			continue
		}
		n := MetricName(m)
		if !valid.MatchString(n) {
			t.Errorf("%s: invalid name %q", m.Name, n)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s are both %s", m.Name, other, n)
		}
		seen[n] = m.Name
	}
	for in, want := range map[string]string{"p99(end_to_end)": "bench_p99_end_to_end_seconds", "peak(worker_rss)": "bench_peak_worker_rss_bytes",
		"duplicates": "bench_duplicates", "breaker_open_seconds": "bench_breaker_open_seconds"} {
		m, _ := report.LookupMetric(in)
		if got := MetricName(m); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestCollector(t *testing.T) {
	c := NewCollector()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	c.Update(Snapshot{Scenario: "s", Variant: "a", ElapsedS: 3,
		Result: report.Variant{Ledger: report.Ledger{Published: 300, Lost: 9}, LatencyMS: report.Latencies{EndToEnd: report.Summary{Count: 10, P99: 250}}},
		Series: map[string]float64{report.SeriesT: 3, report.SeriesQueueReady: 42, report.SeriesPublished: 300}})
	c.Update(Snapshot{Scenario: "s", Variant: "b", Result: report.Variant{Ledger: report.Ledger{Published: 5}}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType().String() != "GAUGE" {
			t.Errorf("%s is a %s", mf.GetName(), mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			var variant string
			for _, l := range m.GetLabel() {
				if l.GetName() == "variant" {
					variant = l.GetValue()
				}
			}
			got[mf.GetName()+"/"+variant] = m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"bench_p99_end_to_end_seconds/a": 0.25, "bench_published/a": 300, "bench_published/b": 5,
		"bench_queue_ready/a": 42, "bench_elapsed_seconds/a": 3,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (served %v), want %v", name, v, ok, want)
		}
	}
	for _, n := range []string{"bench_lost/a", "bench_t_s/a", "bench_p99_end_to_end_seconds/b"} {
		if _, ok := got[n]; ok {
			t.Errorf("%s is served: not known live, or not measured", n)
		}
	}
}
