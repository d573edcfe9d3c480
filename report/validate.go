package report

import (
	"errors"
	"fmt"
	"math"
)

// ErrImpossible marks a result holding values no run can produce (a negative
// latency, more jobs lost than confirmed, a NaN): a damaged or hand-edited
// file, which the comparison refuses rather than judges.
var ErrImpossible = errors.New("impossible value")

// Check returns every impossible value of r at once, each wrapping
// ErrImpossible; nil when r could have come from a run.
func (r *Result) Check() error {
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %w", where, fmt.Sprintf(format, args...), ErrImpossible))
	}
	if r.Repeat < 0 {
		bad("repeat", "%d is negative", r.Repeat)
	}
	for i := range r.Variants {
		v := &r.Variants[i]
		where := fmt.Sprintf("variant %q", v.Name)
		checkLedger(v.Ledger, func(f string, a ...any) { bad(where, f, a...) })
		for _, k := range Kinds() {
			checkSummary(k, summaryOf(v, k), func(f string, a ...any) { bad(where, f, a...) })
		}
		for name, x := range map[string]float64{
			"throughput.publish_per_s": v.Throughput.PublishPerS, "throughput.complete_per_s": v.Throughput.CompletePerS,
			"drain_seconds": v.DrainSeconds, "load_seconds": v.LoadSeconds, "worker_cpu_seconds": v.WorkerCPUSeconds,
			"breaker.open_seconds": v.Breaker.OpenSeconds,
		} {
			if !(x >= 0) || math.IsInf(x, 0) {
				bad(where, "%s %v: want a finite value ≥ 0", name, x)
			}
		}
		for name, x := range map[string]int64{
			"peak.worker_rss_bytes": v.Peak.WorkerRSSBytes, "peak.worker_heap_bytes": v.Peak.WorkerHeapBytes,
			"peak.queue_ready": v.Peak.QueueReady, "peak.queue_unacked": v.Peak.QueueUnacked,
			"late_sends": v.LateSends, "breaker.opened": v.Breaker.Opened,
		} {
			if x < 0 {
				bad(where, "%s %d is negative", name, x)
			}
		}
		if c := v.Calibration; c != nil && (!(c.PublishPerS >= 0) || !(c.ConsumePerS >= 0) || math.IsInf(c.PublishPerS+c.ConsumePerS, 0)) {
			bad(where, "calibration %v/%v msgs/s: want finite rates ≥ 0", c.PublishPerS, c.ConsumePerS)
		}
		for name, xs := range v.Runs {
			if r.Repeat > 0 && len(xs) != r.Repeat {
				bad(where, "runs[%s] holds %d values for %d runs", name, len(xs), r.Repeat)
			}
			for _, x := range xs {
				if math.IsNaN(x) || math.IsInf(x, 0) || (x < 0 && nonNegative(name)) {
					bad(where, "runs[%s] holds %v", name, x)
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

// nonNegative reports whether a metric can never be below zero: all of the
// table's metrics are counts, durations, sizes or rates.
func nonNegative(name string) bool {
	_, ok := LookupMetric(name)
	return ok
}

func checkLedger(l Ledger, bad func(string, ...any)) {
	counts := []struct {
		name string
		v    int64
	}{
		{"published", l.Published}, {"confirmed", l.Confirmed}, {"unconfirmed", l.Unconfirmed},
		{"succeeded", l.Succeeded}, {"recovered", l.Recovered}, {"dead_lettered", l.DeadLettered},
		{"lost", l.Lost}, {"duplicates", l.Duplicates}, {"redelivered", l.Redelivered},
		{"retries", l.Retries}, {"tid_mismatches", l.TIDMismatches}, {"emitted", l.Emitted},
	}
	for _, c := range counts {
		if c.v < 0 {
			bad("ledger.%s %d is negative", c.name, c.v)
		}
	}
	if l.Confirmed+l.Unconfirmed > l.Published {
		bad("ledger: %d confirmed + %d unconfirmed of %d published", l.Confirmed, l.Unconfirmed, l.Published)
	}
	if l.Lost > l.Confirmed {
		bad("ledger: %d lost of %d confirmed", l.Lost, l.Confirmed)
	}
}

func checkSummary(kind string, s Summary, bad func(string, ...any)) {
	if s.Count < 0 {
		bad("latency_ms.%s.count %d is negative", kind, s.Count)
	}
	vals := []struct {
		name string
		v    float64
	}{{"mean", s.Mean}, {"p50", s.P50}, {"p90", s.P90}, {"p99", s.P99}, {"p999", s.P999}, {"max", s.Max}}
	for _, x := range vals {
		if !(x.v >= 0) || math.IsInf(x.v, 0) {
			bad("latency_ms.%s.%s %v ms: want a finite value ≥ 0", kind, x.name, x.v)
		}
	}
	if s.Count == 0 {
		return
	}
	// Percentiles of one distribution never decrease (medians of repeated
	// runs keep the order too).
	for i := 2; i < len(vals); i++ {
		if vals[i].v < vals[i-1].v {
			bad("latency_ms.%s: %s %v ms below %s %v ms", kind, vals[i].name, vals[i].v, vals[i-1].name, vals[i-1].v)
		}
	}
	if s.Mean > s.Max {
		bad("latency_ms.%s: mean %v ms above max %v ms", kind, s.Mean, s.Max)
	}
}
