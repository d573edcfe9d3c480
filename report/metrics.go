package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/benchmq/bench/report/gate"
)

// Better says which way a metric improves.
type Better int

const (
	// Neither: the metric describes the run (published) rather than judges it.
	Neither Better = iota
	Lower
	Higher
)

// Metric is one named figure of a variant. Gates, the baseline comparison,
// the report and the live metrics all name metrics from this one table (as
// k6 keeps one registry of metrics for thresholds, outputs and summaries).
type Metric struct {
	Name    string    // canonical: "lost", "p99(end_to_end)", "peak(worker_rss)"
	Aliases []string  // other accepted spellings, e.g. "throughput.complete_per_s"
	Kind    gate.Kind // Count, Duration (seconds), Size (bytes) or Rate (per second)
	Better  Better
	Doc     string
	// Value reads the metric from a variant in its base unit; ok is false when
	// it was not measured (a latency without samples).
	Value func(v *Variant) (float64, bool)
	// Series is the time series a peak is the maximum of; "" for other metrics.
	Series string
	// Compare marks the metrics the baseline comparison judges, with the
	// smallest absolute change that can count (a noise floor, in base units).
	Compare bool
	Floor   float64
	// Live says whether the metric can be read while the variant runs: abort
	// gates and the live metrics (--metrics-addr) use only those that can.
	Live Liveness
	// Samples counts what a latency metric is computed from: abort gates need
	// enough of them for a SoFar metric, the comparison for any latency.
	Samples func(v *Variant) int64
	// Gated marks the compared metrics whose regression fails the comparison
	// by default: the stable ones a worker change moves. The others are
	// reported, and gated only when the scenario names them (baseline.gate).
	Gated bool
	// Machine marks throughput that scales with the broker+machine's capacity
	// when the queue is saturated: the comparison normalises it by the
	// calibration (see MachineFactor).
	Machine bool
}

// Liveness says whether and how a metric is known while a variant runs.
type Liveness int

const (
	// AtEnd: known only when the variant ends (lost needs the drain; rates
	// are over the whole run).
	AtEnd Liveness = iota
	// Grows: known during the run and never smaller at the end: the value
	// so far is a floor of the final one (counts, maxima, peaks).
	Grows
	// SoFar: known during the run over the samples so far; the final value
	// may be higher or lower (percentiles and means of latency).
	SoFar
)

func (l Liveness) String() string {
	switch l {
	case Grows:
		return "grows"
	case SoFar:
		return "so far"
	}
	return "at end"
}

// Series names: the columns of result.json's series, sampled every 250 ms.
const (
	SeriesT              = "t_s"
	SeriesQueueReady     = "queue_ready"
	SeriesQueueUnacked   = "queue_unacked"
	SeriesQueueRetry     = "queue_retry"
	SeriesQueueDead      = "queue_dead"
	SeriesQueueConsumers = "queue_consumers"
	SeriesWorkerRSS      = "worker_rss_bytes"
	SeriesWorkerRSSTotal = "worker_rss_total_bytes"
	SeriesRunnerRSS      = "runner_rss_bytes"
	SeriesBrokerMemory   = "broker_memory_bytes"
	SeriesWorkerHeap     = "worker_heap_bytes"
	SeriesWorkerInflight = "worker_inflight"
	SeriesGoroutines     = "worker_goroutines"
	SeriesBreakerOpen    = "breaker_open"
	SeriesPublishRate    = "publish_rate"
	SeriesCompleteRate   = "complete_rate"
	SeriesIntendedRate   = "intended_rate"
	SeriesPublished      = "published"
	SeriesCompleted      = "completed"
	SeriesFailures       = "failures"
	// Counts from the ledger, cumulative, and the cluster's view: what each
	// fault's client figures are computed from.
	SeriesConfirmed        = "confirmed"
	SeriesUnconfirmed      = "unconfirmed"
	SeriesDuplicates       = "duplicates"
	SeriesRedelivered      = "redelivered"
	SeriesWorkersConsuming = "workers_consuming" // workers reporting an active consumer
	SeriesQueueLeader      = "queue_leader"      // the node leading the job's quorum queue; 0: none
	// Per-second latency has its own time axis, seconds since the load started.
	SeriesLatencyT = "latency_t_s"
	SeriesP50MS    = "p50_ms"
	SeriesP99MS    = "p99_ms"
	// Worker CPU: seconds used since the load started, summed over the
	// worker processes, and the cores they used over the last sample.
	SeriesWorkerCPU      = "worker_cpu_seconds"
	SeriesWorkerCPUCores = "worker_cpu_cores"
	// The busiest worker process's cores over the last sample.
	SeriesWorkerCPUCoresMax = "worker_cpu_cores_max"
)

var metrics = buildMetrics()

func count(name, doc string, better Better, get func(*Variant) int64) Metric {
	return Metric{Name: name, Kind: gate.Count, Better: better, Doc: doc, Live: Grows,
		Value: func(v *Variant) (float64, bool) { return float64(get(v)), true }}
}

// observed makes m unknown in a variant whose mode cannot see the ledger
// count name (Ledger.Unobserved): not measured, never 0.
func observed(name string, m Metric) Metric {
	get := m.Value
	m.Value = func(v *Variant) (float64, bool) {
		if !v.Ledger.Observed(name) {
			return 0, false
		}
		return get(v)
	}
	return m
}

// atEnd marks m as known only when the variant ends.
func atEnd(m Metric) Metric {
	m.Live = AtEnd
	return m
}

// compared marks m as judged by the baseline comparison, above floor, and
// reported but not gated by default.
func compared(m Metric, floor float64) Metric {
	m.Compare, m.Floor = true, floor
	return m
}

// gated marks m as compared above floor and gated by default.
func gated(m Metric, floor float64) Metric {
	m = compared(m, floor)
	m.Gated = true
	return m
}

// jobsDone is the number of distinct jobs with a final outcome.
func jobsDone(v *Variant) int64 {
	if v.Ledger.Finished > 0 {
		return v.Ledger.Finished
	}
	// Results written before finished existed counted every success record.
	return v.Ledger.Succeeded + v.Ledger.Recovered - v.Ledger.Duplicates
}

func buildMetrics() []Metric {
	ms := []Metric{
		count("published", "jobs the generator published", Neither, func(v *Variant) int64 { return v.Ledger.Published }),
		count("confirmed", "jobs the broker confirmed", Neither, func(v *Variant) int64 { return v.Ledger.Confirmed }),
		// Until the load ends, a job not yet confirmed may still be.
		atEnd(count("unconfirmed", "published jobs the broker never confirmed", Lower, func(v *Variant) int64 { return v.Ledger.Unconfirmed })),
		count("succeeded", "jobs whose final outcome is a success", Neither, func(v *Variant) int64 { return v.Ledger.Succeeded }),
		count("recovered", "jobs whose recovery function ran", Neither, func(v *Variant) int64 { return v.Ledger.Recovered }),
		count("dead_lettered", "jobs put in the dead-letter queue", Lower, func(v *Variant) int64 { return v.Ledger.DeadLettered }),
		// A job is lost only when the drain ended without its outcome.
		atEnd(count("lost", "confirmed jobs without a final outcome", Lower, func(v *Variant) int64 { return v.Ledger.Lost })),
		// delete_queue takes a queue's messages with it: those jobs are the
		// operator's loss; what a worker runtime must not lose is the rest.
		atEnd(count("lost_beyond_deleted", "lost jobs beyond the messages delete_queue faults deleted with their queue", Lower, func(v *Variant) int64 {
			lost := v.Ledger.Lost
			for _, f := range v.Faults {
				lost -= f.DeletedMessages
			}
			return max(lost, 0)
		})),
		count("duplicates", "second final outcomes of a job", Lower, func(v *Variant) int64 { return v.Ledger.Duplicates }),
		observed("redelivered", count("redelivered", "deliveries the broker flagged as redelivered", Lower, func(v *Variant) int64 { return v.Ledger.Redelivered })),
		observed("retries", gated(count("retries", "attempts after the first, summed over all jobs", Lower, func(v *Variant) int64 { return v.Ledger.Retries }), 10)),
		count("tid_mismatches", "emitted events whose TID differs from their job's", Lower, func(v *Variant) int64 { return v.Ledger.TIDMismatches }),
	}
	latencies := []struct {
		name string
		get  func(*Variant) Summary
	}{
		{"end_to_end", func(v *Variant) Summary { return v.LatencyMS.EndToEnd }},
		{"publish_confirm", func(v *Variant) Summary { return v.LatencyMS.PublishConfirm }},
		{"processing", func(v *Variant) Summary { return v.LatencyMS.Processing }},
	}
	stats := []struct {
		name string
		get  func(Summary) float64
	}{
		{"p50", func(s Summary) float64 { return s.P50 }}, {"p90", func(s Summary) float64 { return s.P90 }},
		{"p99", func(s Summary) float64 { return s.P99 }}, {"p999", func(s Summary) float64 { return s.P999 }},
		{"max", func(s Summary) float64 { return s.Max }}, {"mean", func(s Summary) float64 { return s.Mean }},
	}
	for _, st := range stats {
		for _, l := range latencies {
			m := Metric{Name: st.name + "(" + l.name + ")", Kind: gate.Duration, Better: Lower,
				Doc: st.name + " of " + strings.ReplaceAll(l.name, "_", "-") + " latency",
				Value: func(v *Variant) (float64, bool) {
					s := l.get(v)
					if s.Count == 0 {
						return 0, false // a gate on it fails loudly instead of passing on zero
					}
					return st.get(s) / 1e3, true
				},
				Samples: func(v *Variant) int64 { return l.get(v).Count }}
			// The runner follows end-to-end latency live; the other kinds
			// are merged from the workers' histograms at the end.
			if l.name == "end_to_end" {
				m.Live = SoFar
				if st.name == "max" {
					m.Live = Grows
				}
			}
			switch {
			case l.name == "end_to_end" && (st.name == "p50" || st.name == "p99" || st.name == "max"):
				// Mostly queueing when the queue backs up: the machine's speed of
				// the moment. Reported; gated when the scenario asks.
				m = compared(m, 1e-3)
				m.Aliases = []string{st.name + "_ms"} // bench compare's earlier names
			case l.name == "processing" && (st.name == "p50" || st.name == "p90"):
				// The handler's own time: what a worker change moves, whatever the queue does.
				m = gated(m, 0.5e-3)
			case l.name == "processing" && st.name == "p99":
				// Its tail is the machine's scheduling delay as much as the handler's:
				// -11 % to +212 % on unchanged code (sets of 5 runs, 2 shared cores).
				m = compared(m, 0.5e-3)
			}
			ms = append(ms, m)
		}
	}
	peaks := []struct {
		arg, series string
		kind        gate.Kind
		get         func(*Peak) int64
	}{
		{"worker_rss", SeriesWorkerRSS, gate.Size, func(p *Peak) int64 { return p.WorkerRSSBytes }},
		{"worker_heap", SeriesWorkerHeap, gate.Size, func(p *Peak) int64 { return p.WorkerHeapBytes }},
		{"queue_ready", SeriesQueueReady, gate.Count, func(p *Peak) int64 { return p.QueueReady }},
		{"queue_unacked", SeriesQueueUnacked, gate.Count, func(p *Peak) int64 { return p.QueueUnacked }},
		{"worker_inflight", SeriesWorkerInflight, gate.Count, func(p *Peak) int64 { return p.WorkerInflight }},
		{"queue_retry", SeriesQueueRetry, gate.Count, func(p *Peak) int64 { return p.QueueRetry }},
		{"queue_dead", SeriesQueueDead, gate.Count, func(p *Peak) int64 { return p.QueueDead }},
		{"worker_goroutines", SeriesGoroutines, gate.Count, func(p *Peak) int64 { return p.WorkerGoroutines }},
	}
	for _, p := range peaks {
		m := Metric{Name: "peak(" + p.arg + ")", Kind: p.kind, Better: Lower, Series: p.series, Live: Grows,
			Doc:   "highest " + p.series + " sampled",
			Value: func(v *Variant) (float64, bool) { return float64(p.get(&v.Peak)), true }}
		if p.arg == "worker_rss" {
			m = gated(m, 1<<20)
			m.Aliases = []string{"peak_rss_bytes"}
		}
		ms = append(ms, m)
	}
	ms = append(ms, trendMetrics()...)
	ms = append(ms, Metric{Name: "peak(worker_cpu_cores)", Kind: gate.Count, Better: Lower, Series: SeriesWorkerCPUCoresMax, Live: Grows,
		Doc: "highest CPU use of one worker process over a sample interval, in cores",
		Value: func(v *Variant) (float64, bool) {
			return v.Peak.WorkerCPUCores, v.Peak.WorkerCPUCores > 0
		}})
	return append(ms,
		Metric{Name: "drain_seconds", Kind: gate.Duration, Better: Lower, Doc: "from the last publish to the last outcome",
			Value: func(v *Variant) (float64, bool) { return v.DrainSeconds, true }, Compare: true, Floor: 1, Aliases: []string{"drain"}},
		Metric{Name: "publish_per_s", Aliases: []string{"throughput.publish_per_s"}, Kind: gate.Rate, Better: Higher, Doc: "jobs published per second of load",
			Value: func(v *Variant) (float64, bool) { return v.Throughput.PublishPerS, true }},
		gated(Metric{Name: "complete_per_s", Aliases: []string{"throughput.complete_per_s"}, Kind: gate.Rate, Better: Higher, Doc: "final outcomes per second of the run",
			Value: func(v *Variant) (float64, bool) { return v.Throughput.CompletePerS, true }, Machine: true}, 1),
		// Reported, not gated by default: a Go process's CPU time per job moves
		// with how idle the machine is (idle processors spin looking for
		// work), -14 % to +44 % between sets of 5 runs of unchanged code and
		// their baselines on the shared 2-core machine. Gate it in an A/B
		// run, where both sides share the machine's state (docs/results.md).
		compared(Metric{Name: "cpu_per_1k_jobs", Kind: gate.Duration, Better: Lower,
			Doc: "worker CPU time (user+system, all processes) per 1,000 jobs with a final outcome",
			Value: func(v *Variant) (float64, bool) {
				n := jobsDone(v)
				if v.WorkerCPUSeconds <= 0 || n <= 0 {
					return 0, false
				}
				return v.WorkerCPUSeconds / float64(n) * 1000, true
			}}, 0.01),
		Metric{Name: "worker_cpu_seconds", Kind: gate.Duration, Better: Lower, Doc: "worker CPU time from the load start to the end of the drain, all processes",
			Value: func(v *Variant) (float64, bool) { return v.WorkerCPUSeconds, v.WorkerCPUSeconds > 0 }},
		Metric{Name: "calibration_publish_per_s", Kind: gate.Rate, Better: Neither, Doc: "raw publish rate of the broker+machine, measured before the load",
			Value: func(v *Variant) (float64, bool) {
				if v.Calibration == nil {
					return 0, false
				}
				return v.Calibration.PublishPerS, true
			}},
		Metric{Name: "calibration_consume_per_s", Kind: gate.Rate, Better: Neither, Doc: "raw consume rate of the broker+machine, measured before the load",
			Value: func(v *Variant) (float64, bool) {
				if v.Calibration == nil {
					return 0, false
				}
				return v.Calibration.ConsumePerS, true
			}},
		Metric{Name: "breaker_opened", Aliases: []string{"breaker.opened"}, Kind: gate.Count, Better: Lower, Doc: "times a breaker opened",
			Value: func(v *Variant) (float64, bool) { return float64(v.Breaker.Opened), true }, Live: Grows},
		Metric{Name: "breaker_open_seconds", Aliases: []string{"breaker.open_seconds"}, Kind: gate.Duration, Better: Lower, Doc: "breaker open time, summed over workers",
			Value: func(v *Variant) (float64, bool) { return v.Breaker.OpenSeconds, true }, Live: Grows},
		faultMetric("fault_leader_seconds", "longest time a fault left the job's quorum queue without a leader (a cluster's)",
			func(f *Fault) *float64 { return f.LeaderSeconds }),
		faultMetric("fault_consume_seconds", "longest time after a fault's start until every worker consumed again",
			func(f *Fault) *float64 { return f.ConsumeSeconds }),
		faultMetric("fault_confirm_seconds", "longest time after a fault's start until the generator's confirms flowed again",
			func(f *Fault) *float64 { return f.ConfirmSeconds }),
		faultMetric("fault_recovery_seconds", "longest time after a fault's end until the completion rate was back to normal",
			func(f *Fault) *float64 { return f.RecoverySeconds }),
		Metric{Name: "late_sends", Kind: gate.Count, Better: Lower, Doc: "publishes that left more than 10 ms after their intended time",
			Value: func(v *Variant) (float64, bool) { return float64(v.LateSends), true }, Live: Grows},
	)
}

// faultMetric is the largest of a per-fault figure over the variant's faults
// of the kinds that have it; not observable without such a fault, or when
// one never got there (a gate on it then fails).
func faultMetric(name, doc string, get func(*Fault) *float64) Metric {
	return Metric{Name: name, Kind: gate.Duration, Better: Lower, Doc: doc,
		Value: func(v *Variant) (float64, bool) {
			worst, seen := 0.0, false
			for i := range v.Faults {
				f := &v.Faults[i]
				x := get(f)
				if x == nil {
					if f.Error != "" || (name == "fault_leader_seconds" && v.Series[SeriesQueueLeader] == nil) {
						continue // not applied, or no quorum queue on a cluster
					}
					return 0, false
				}
				worst, seen = max(worst, *x), true
			}
			return worst, seen
		}}
}

// trendMetrics are growth(...) and slope(...) of the memory series: a long run
// (scenarios/soak.yaml) gates on memory that keeps climbing, not on memory
// that is merely high.
func trendMetrics() []Metric {
	var out []Metric
	for _, s := range []struct{ arg, series string }{
		{"worker_rss", SeriesWorkerRSS}, {"worker_heap", SeriesWorkerHeap}, {"runner_rss", SeriesRunnerRSS},
	} {
		out = append(out,
			atEnd(Metric{Name: "growth(" + s.arg + ")", Kind: gate.Size, Better: Lower,
				Doc: "how much " + s.series + " rose: the median of the last quarter of the samples minus the median of the first",
				Value: func(v *Variant) (float64, bool) {
					g := gate.Growth(v.Series[s.series])
					return g, !math.IsNaN(g)
				}}),
			atEnd(Metric{Name: "slope(" + s.arg + ")", Kind: gate.Size, Better: Lower,
				Doc: "how fast " + s.series + " rose, per second: the least-squares slope over the samples after the first quarter (the warm-up)",
				Value: func(v *Variant) (float64, bool) {
					t, vs := v.Series[SeriesT], v.Series[s.series]
					n := min(len(t), len(vs))
					sl := gate.Slope(t[n/4:n], vs[n/4:n])
					return sl, !math.IsNaN(sl)
				}}),
		)
	}
	return out
}

// Metrics returns the metric table, in documentation order.
func Metrics() []Metric { return slices.Clone(metrics) }

// LookupMetric finds a metric by its name or an alias.
func LookupMetric(name string) (Metric, bool) {
	for _, m := range metrics {
		if m.Name == name || slices.Contains(m.Aliases, name) {
			return m, true
		}
	}
	return Metric{}, false
}

// MetricNames returns the canonical names, in documentation order.
func MetricNames() []string {
	out := make([]string, len(metrics))
	for i, m := range metrics {
		out[i] = m.Name
	}
	return out
}

// CompareMetrics lists the metrics the baseline comparison judges, in report order.
func CompareMetrics() []string {
	var out []string
	for _, m := range metrics {
		if m.Compare {
			out = append(out, m.Name)
		}
	}
	return out
}

// GatedMetrics lists the compared metrics gated by default, in report order.
func GatedMetrics() []string {
	var out []string
	for _, m := range metrics {
		if m.Gated {
			out = append(out, m.Name)
		}
	}
	return out
}

// Lookup returns a gate's metric lookup over one variant: values in base units.
func Lookup(v *Variant) func(metric string) (float64, bool) {
	return func(name string) (float64, bool) {
		m, ok := LookupMetric(name)
		if !ok {
			return 0, false
		}
		return m.Value(v)
	}
}

// Catalog is the metric table as gate expressions see it.
var Catalog gate.Catalog = catalog{}

type catalog struct{}

func (catalog) Resolve(name string) (string, gate.Kind, bool) {
	m, ok := LookupMetric(name)
	return m.Name, m.Kind, ok
}

func (catalog) Names() []string {
	var out []string
	for _, m := range metrics {
		out = append(append(out, m.Name), m.Aliases...)
	}
	return out
}

// FormatMetric formats a metric's value (in base units) for people.
func FormatMetric(name string, v float64) string {
	m, ok := LookupMetric(name)
	if !ok {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	switch m.Kind {
	case gate.Duration:
		if math.Abs(v) < 1 {
			return fmt.Sprintf("%.2f ms", v*1e3)
		}
		return fmt.Sprintf("%.2f s", v)
	case gate.Size:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case gate.Rate:
		return fmt.Sprintf("%.1f/s", v)
	}
	if v != math.Trunc(v) {
		return fmt.Sprintf("%.2f", v) // cores
	}
	return fmt.Sprintf("%.0f", v)
}
