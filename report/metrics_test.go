package report

import (
	"math"
	"testing"

	"github.com/benchmq/bench/report/gate"
)

func TestLookup(t *testing.T) {
	v := &Variant{
		Ledger:       Ledger{Published: 10, Lost: 2, TIDMismatches: 1, DeadLettered: 3},
		LatencyMS:    Latencies{EndToEnd: Summary{Count: 5, P99: 1500, P999: 2500, Mean: 20}},
		Throughput:   Throughput{CompletePerS: 42},
		DrainSeconds: 7,
		Peak:         Peak{WorkerRSSBytes: 100 << 20, QueueUnacked: 9},
		Breaker:      Breaker{Opened: 2, OpenSeconds: 3.5},
		LateSends:    4,
		// 8 samples a second apart: worker RSS climbs 1 MiB a second from 10
		// MiB, the runner's stays flat, the heap is not sampled.
		Series: map[string][]float64{
			SeriesT:          {0, 1, 2, 3, 4, 5, 6, 7},
			SeriesWorkerRSS:  {10 << 20, 11 << 20, 12 << 20, 13 << 20, 14 << 20, 15 << 20, 16 << 20, 17 << 20},
			SeriesRunnerRSS:  {50 << 20, 50 << 20, 50 << 20, 50 << 20, 50 << 20, 50 << 20, 50 << 20, 50 << 20},
			SeriesWorkerHeap: {1, 1, 1, 1, 1, 1, 1, 1},
		},
	}
	look := Lookup(v)
	want := map[string]float64{
		"published": 10, "lost": 2, "tid_mismatches": 1, "dead_lettered": 3,
		"p99(end_to_end)": 1.5, "p999(end_to_end)": 2.5, "mean(end_to_end)": 0.02,
		"complete_per_s": 42, "throughput.complete_per_s": 42, "drain_seconds": 7,
		"peak(worker_rss)": 100 << 20, "peak(queue_unacked)": 9,
		"breaker_opened": 2, "breaker_open_seconds": 3.5, "late_sends": 4,
		// Quarters [10, 11] and [16, 17] MiB; the slope over the samples after the first quarter.
		"growth(worker_rss)": 6 << 20, "slope(worker_rss)": 1 << 20, "growth(runner_rss)": 0, "slope(runner_rss)": 0,
	}
	for m, w := range want {
		if got, ok := look(m); !ok || math.Abs(got-w) > 1e-9 {
			t.Errorf("lookup(%s) = %v, %v; want %v", m, got, ok, w)
		}
	}
	for _, m := range []string{"p99(processing)", "p99(nothing)", "nothing", "peak(nothing)"} {
		if _, ok := look(m); ok {
			t.Errorf("lookup(%s) found a value, want missing", m)
		}
	}
	// Worker CPU per 1,000 jobs: CPU seconds over jobs with a final outcome
	// (duplicates counted once); missing until both are measured.
	if _, ok := look("cpu_per_1k_jobs"); ok {
		t.Error("cpu_per_1k_jobs without CPU measured: found")
	}
	v.Ledger.Succeeded, v.Ledger.Recovered, v.Ledger.Duplicates = 1900, 110, 10
	v.WorkerCPUSeconds = 0.5
	if got, ok := look("cpu_per_1k_jobs"); !ok || math.Abs(got-0.25) > 1e-12 {
		t.Errorf("cpu_per_1k_jobs = %v, %v; want 0.25 s", got, ok)
	}
	v.Calibration = &Calibration{PublishPerS: 9000, ConsumePerS: 4000}
	if got, _ := look("calibration_consume_per_s"); got != 4000 || v.Calibration.Capacity() != 6000 {
		t.Errorf("calibration: consume %v, capacity %v", got, v.Calibration.Capacity())
	}
	// Per-fault figures: the worst fault's; missing when one never got there.
	two, five := 2.0, 5.0
	v.Faults = []Fault{{ConsumeSeconds: &two, ConfirmSeconds: &five, RecoverySeconds: &two, LeaderSeconds: &five}, {ConsumeSeconds: &five, ConfirmSeconds: &two, RecoverySeconds: &five}}
	if got, ok := look("fault_consume_seconds"); !ok || got != 5 {
		t.Errorf("fault_consume_seconds = %v, %v; want 5", got, ok)
	}
	if got, ok := look("fault_leader_seconds"); !ok || got != 5 {
		t.Errorf("fault_leader_seconds without a leader series = %v, %v; want 5 (the fault that has one)", got, ok)
	}
	if v.Series == nil {
		v.Series = map[string][]float64{}
	}
	v.Series[SeriesQueueLeader] = []float64{1}
	if _, ok := look("fault_leader_seconds"); ok {
		t.Error("fault_leader_seconds with a fault whose queue never had a leader again: found")
	}
	v.Faults[1].LeaderSeconds = &two
	// Every documented metric must be known to Lookup (missing only when unmeasured).
	v.LatencyMS.PublishConfirm.Count, v.LatencyMS.Processing.Count = 1, 1
	if _, ok := look("peak(worker_cpu_cores)"); ok {
		t.Error("peak(worker_cpu_cores) without CPU measured: found")
	}
	v.Peak.WorkerCPUCores = 0.5
	for _, m := range MetricNames() {
		if _, ok := look(m); !ok {
			t.Errorf("lookup(%s) missing", m)
		}
		if _, err := gate.Parse(m+" >= 0", Catalog); err != nil {
			t.Errorf("Parse(%s >= 0): %v", m, err)
		}
	}
}

// TestMetricTableIsConsistent: names and aliases are unique, every metric has
// a reader and a documented meaning, and peaks name their series.
func TestMetricTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Metrics() {
		for _, n := range append([]string{m.Name}, m.Aliases...) {
			if seen[n] {
				t.Errorf("%s named twice", n)
			}
			seen[n] = true
		}
		if m.Value == nil || m.Doc == "" {
			t.Errorf("%s: no reader or no doc", m.Name)
		}
		if (m.Series != "") != (len(m.Name) > 5 && m.Name[:5] == "peak(") {
			t.Errorf("%s: series %q", m.Name, m.Series)
		}
		if m.Compare && m.Better == Neither {
			t.Errorf("%s is compared but has no better direction", m.Name)
		}
	}
}
