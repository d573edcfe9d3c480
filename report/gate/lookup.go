package gate

import (
	"strings"

	"github.com/benchmq/bench/report"
)

// Lookup returns a metric lookup over one variant's result, in base units:
// latencies (stored in milliseconds) as seconds, peaks of memory in bytes,
// everything else as stored. A latency whose distribution has no samples is
// reported as missing, so a gate on it fails loudly instead of passing on zero.
func Lookup(v *report.Variant) func(metric string) (float64, bool) {
	return func(metric string) (float64, bool) {
		if c, ok := aliases[metric]; ok {
			metric = c
		}
		l := v.Ledger
		switch metric {
		case "published":
			return float64(l.Published), true
		case "confirmed":
			return float64(l.Confirmed), true
		case "unconfirmed":
			return float64(l.Unconfirmed), true
		case "succeeded":
			return float64(l.Succeeded), true
		case "recovered":
			return float64(l.Recovered), true
		case "dead_lettered":
			return float64(l.DeadLettered), true
		case "lost":
			return float64(l.Lost), true
		case "duplicates":
			return float64(l.Duplicates), true
		case "redelivered":
			return float64(l.Redelivered), true
		case "retries":
			return float64(l.Retries), true
		case "tid_mismatches":
			return float64(l.TIDMismatches), true
		case "drain_seconds":
			return v.DrainSeconds, true
		case "publish_per_s":
			return v.Throughput.PublishPerS, true
		case "complete_per_s":
			return v.Throughput.CompletePerS, true
		case "breaker_opened":
			return float64(v.Breaker.Opened), true
		case "breaker_open_seconds":
			return v.Breaker.OpenSeconds, true
		case "late_sends":
			return float64(v.LateSends), true
		case "peak(worker_rss)":
			return float64(v.Peak.WorkerRSSBytes), true
		case "peak(worker_heap)":
			return float64(v.Peak.WorkerHeapBytes), true
		case "peak(queue_ready)":
			return float64(v.Peak.QueueReady), true
		case "peak(queue_unacked)":
			return float64(v.Peak.QueueUnacked), true
		case "peak(worker_inflight)":
			return float64(v.Peak.WorkerInflight), true
		}
		fn, arg, ok := strings.Cut(metric, "(")
		if !ok {
			return 0, false
		}
		var s report.Summary
		switch strings.TrimSuffix(arg, ")") {
		case "end_to_end":
			s = v.LatencyMS.EndToEnd
		case "publish_confirm":
			s = v.LatencyMS.PublishConfirm
		case "processing":
			s = v.LatencyMS.Processing
		default:
			return 0, false
		}
		if s.Count == 0 {
			return 0, false
		}
		var ms float64
		switch fn {
		case "p50":
			ms = s.P50
		case "p90":
			ms = s.P90
		case "p99":
			ms = s.P99
		case "p999":
			ms = s.P999
		case "max":
			ms = s.Max
		case "mean":
			ms = s.Mean
		default:
			return 0, false
		}
		return ms / 1e3, true
	}
}
