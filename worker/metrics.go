package worker

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// handlerMetrics are one handler's counters, read by the collector.
type handlerMetrics struct {
	attempts     [numResults]atomic.Uint64
	acked        atomic.Uint64
	retried      atomic.Uint64
	deadLettered atomic.Uint64
	requeued     atomic.Uint64
	recovered    atomic.Uint64
	inFlight     atomic.Int64

	// The attempt-duration histogram (kept once a collector exists): a count per
	// bucket (non-cumulative), the total count and the sum in nanoseconds.
	buckets [len(durationBuckets)]atomic.Uint64
	timed   atomic.Uint64
	sumNS   atomic.Int64
}

// durationBuckets are the upper bounds, in seconds, of bench_worker_handler_attempt_seconds.
var durationBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Attempt results, the "result" label of bench_worker_handler_attempts_total.
const (
	resultOK = iota
	resultError
	resultTimeout
	resultPanic
	numResults
)

var resultNames = [numResults]string{"ok", "error", "timeout", "panic"}

func newHandlerMetrics() *handlerMetrics { return &handlerMetrics{} }

// observe records an attempt's duration in the histogram.
func (m *handlerMetrics) observe(d time.Duration) {
	sec := d.Seconds()
	for i, le := range durationBuckets {
		if sec <= le {
			m.buckets[i].Add(1)
			break
		}
	}
	m.timed.Add(1)
	m.sumNS.Add(int64(d))
}

// count records an attempt's result.
func (m *handlerMetrics) count(err error) {
	r := resultOK
	if err != nil {
		r = resultOf(err)
	}
	m.attempts[r].Add(1)
}

// resultOf classifies a failed attempt (its own function: errors.As's targets would
// otherwise be allocated for every attempt, successful ones included).
func resultOf(err error) int {
	var pe *panicError
	var ae *abandonedError
	switch {
	case errors.As(err, &pe):
		return resultPanic
	case errors.As(err, &ae) || errors.Is(err, errLateSuccess):
		return resultTimeout
	}
	return resultError
}

// collector exports a worker's Stats, and each handler's counters, as Prometheus
// metrics.
type collector struct {
	w        *Worker
	counters []statDesc
	gauges   []statDesc
	state    *prometheus.Desc

	attempts, jobs, recoveries, inFlight, duration *prometheus.Desc
}

type statDesc struct {
	d *prometheus.Desc
	v func(Stats) float64
}

// NewCollector returns a prometheus.Collector for w, with an "app" label: the
// worker's Stats as bench_worker_*, and per handler (labels "queue" and "name", the
// task or event) bench_worker_handler_attempts_total{result=ok|error|timeout|panic},
// bench_worker_handler_jobs_total{outcome=acked|retried|dead_lettered|requeued},
// bench_worker_handler_recoveries_total, bench_worker_handler_in_flight and the
// histogram bench_worker_handler_attempt_seconds (attempts are timed from the
// collector's creation on). The breaker, one per worker, is
// bench_worker_breaker_state{state}. Register it with a prometheus.Registerer.
func NewCollector(w *Worker) prometheus.Collector {
	w.timed.Store(true)
	labels := prometheus.Labels{"app": w.cfg.App}
	desc := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc("bench_worker_"+name, help, vars, labels)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return &collector{
		w: w,
		counters: []statDesc{
			{desc("attempts_started_total", "Attempts started."), func(s Stats) float64 { return float64(s.Started) }},
			{desc("jobs_acked_total", "Jobs acked after a successful attempt."), func(s Stats) float64 { return float64(s.Acked) }},
			{desc("jobs_retried_total", "Retries scheduled."), func(s Stats) float64 { return float64(s.Retried) }},
			{desc("jobs_recovered_total", "Recovery functions run."), func(s Stats) float64 { return float64(s.Recovered) }},
			{desc("jobs_dead_lettered_total", "Jobs published to their dead queue."), func(s Stats) float64 { return float64(s.DeadLettered) }},
			{desc("attempts_failed_total", "Attempts that failed."), func(s Stats) float64 { return float64(s.Failed) }},
			{desc("jobs_requeued_total", "Deliveries requeued without an attempt charged."), func(s Stats) float64 { return float64(s.Requeued) }},
			{desc("breaker_opened_total", "Times the circuit breaker opened."), func(s Stats) float64 { return float64(s.BreakerOpened) }},
			{desc("breaker_open_seconds_total", "Time the circuit breaker spent open or half-open."), func(s Stats) float64 { return s.BreakerOpenTime.Seconds() }},
			{desc("reconnects_total", "Connections rebuilt after a loss."), func(s Stats) float64 { return float64(s.Reconnects) }},
			{desc("consumer_cancels_total", "Consumers the broker cancelled, each restored."), func(s Stats) float64 { return float64(s.ConsumerCancels) }},
		},
		gauges: []statDesc{
			{desc("jobs_in_flight", "Jobs being handled."), func(s Stats) float64 { return float64(s.InFlight) }},
			{desc("consumer_active", "1 while a consumer is registered with the broker."), func(s Stats) float64 { return b(s.ConsumerActive) }},
			{desc("connection_blocked", "1 while the broker blocks the connection."), func(s Stats) float64 { return b(s.Blocked) }},
			{desc("handlers_abandoned", "Handlers still running past their attempt's deadline."), func(s Stats) float64 { return float64(s.Abandoned) }},
		},
		state:      desc("breaker_state", "1 for the circuit breaker's current state.", "state"),
		attempts:   desc("handler_attempts_total", "A handler's attempts by result.", "queue", "name", "result"),
		jobs:       desc("handler_jobs_total", "A handler's deliveries by outcome.", "queue", "name", "outcome"),
		recoveries: desc("handler_recoveries_total", "A handler's recovery functions run.", "queue", "name"),
		inFlight:   desc("handler_in_flight", "A handler's jobs being handled.", "queue", "name"),
		duration:   desc("handler_attempt_seconds", "Duration of a handler's attempts, middleware included.", "queue", "name"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.counters {
		ch <- m.d
	}
	for _, m := range c.gauges {
		ch <- m.d
	}
	for _, d := range []*prometheus.Desc{c.state, c.attempts, c.jobs, c.recoveries, c.inFlight, c.duration} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.w.Stats()
	for _, m := range c.counters {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, m.v(s))
	}
	for _, m := range c.gauges {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, m.v(s))
	}
	for _, st := range []string{"closed", "half-open", "open", "disabled"} {
		v := 0.0
		if st == s.BreakerState {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, st)
	}
	c.w.mu.Lock()
	handlers := c.w.handlers
	c.w.mu.Unlock()
	for _, h := range handlers {
		m := h.m
		for r, name := range resultNames {
			ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(m.attempts[r].Load()), h.queue, h.name, name)
		}
		for _, o := range []struct {
			name string
			v    *atomic.Uint64
		}{{"acked", &m.acked}, {"retried", &m.retried}, {"dead_lettered", &m.deadLettered}, {"requeued", &m.requeued}} {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.CounterValue, float64(o.v.Load()), h.queue, h.name, o.name)
		}
		ch <- prometheus.MustNewConstMetric(c.recoveries, prometheus.CounterValue, float64(m.recovered.Load()), h.queue, h.name)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(m.inFlight.Load()), h.queue, h.name)
		cum := make(map[float64]uint64, len(durationBuckets))
		var n uint64
		for i, le := range durationBuckets {
			n += m.buckets[i].Load()
			cum[le] = n
		}
		count := max(m.timed.Load(), n) // observations above the last bucket count only here
		ch <- prometheus.MustNewConstHistogram(c.duration, count, time.Duration(m.sumNS.Load()).Seconds(), cum, h.queue, h.name)
	}
}
