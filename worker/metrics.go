package worker

import "github.com/prometheus/client_golang/prometheus"

// collector exports a worker's Stats as Prometheus metrics.
type collector struct {
	w        *Worker
	counters []counterDesc
	gauges   []gaugeDesc
	state    *prometheus.Desc
}

type counterDesc struct {
	d *prometheus.Desc
	v func(Stats) float64
}

type gaugeDesc = counterDesc

// NewCollector returns a prometheus.Collector for w's Stats, named
// bench_worker_*, with an "app" label. Register it with a prometheus.Registerer.
func NewCollector(w *Worker) prometheus.Collector {
	labels := prometheus.Labels{"app": w.cfg.App}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("bench_worker_"+name, help, nil, labels)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return &collector{
		w: w,
		counters: []counterDesc{
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
		},
		gauges: []gaugeDesc{
			{desc("jobs_in_flight", "Jobs being handled."), func(s Stats) float64 { return float64(s.InFlight) }},
			{desc("consumer_active", "1 while a consumer is registered with the broker."), func(s Stats) float64 { return b(s.ConsumerActive) }},
			{desc("connection_blocked", "1 while the broker blocks the connection."), func(s Stats) float64 { return b(s.Blocked) }},
		},
		state: prometheus.NewDesc("bench_worker_breaker_state", "1 for the circuit breaker's current state.", []string{"state"}, labels),
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
	ch <- c.state
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
}
