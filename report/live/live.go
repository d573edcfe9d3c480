// Package live serves a run's figures while it runs to Prometheus
// (`bench run --metrics-addr`), named after result.json's metric table
// (report.Metrics) and series, so a dashboard and a gate speak of the same
// things.
package live

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/gate"
)

// Snapshot is one variant's state during a run.
type Snapshot struct {
	Scenario string
	Variant  string
	ElapsedS float64 // since the variant's load started
	// Result holds the figures so far; of its metrics only those whose
	// report.Metric.Live is not AtEnd mean anything yet.
	Result report.Variant
	// Series holds the latest sample of each series (report.Series*).
	Series map[string]float64
}

// MetricName is the Prometheus name of a metric of the table: "bench_", the
// name with its brackets as underscores, and the base unit when the name
// lacks it: p99(end_to_end) is bench_p99_end_to_end_seconds,
// peak(worker_rss) bench_peak_worker_rss_bytes, lost bench_lost.
func MetricName(m report.Metric) string {
	n := "bench_" + strings.TrimSuffix(strings.NewReplacer("(", "_", ")", "", ".", "_").Replace(m.Name), "_")
	switch m.Kind {
	case gate.Duration:
		if !strings.HasSuffix(n, "_seconds") {
			n += "_seconds"
		}
	case gate.Size:
		if !strings.HasSuffix(n, "_bytes") {
			n += "_bytes"
		}
	case gate.Rate:
		if !strings.HasSuffix(n, "_per_s") {
			n += "_per_s"
		}
	}
	return n
}

// SeriesName is the Prometheus name of a series: bench_queue_ready,
// bench_worker_rss_bytes.
func SeriesName(series string) string { return "bench_" + series }

// Collector is a prometheus.Collector of the latest snapshot of every
// variant of the run, labelled scenario and variant. Update it from the
// runner; scrape it any time.
type Collector struct {
	mu      sync.Mutex
	order   []string // variants in the order they started
	snaps   map[string]Snapshot
	metrics []report.Metric // the live ones
	descs   map[string]*prometheus.Desc
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	c := &Collector{snaps: map[string]Snapshot{}, descs: map[string]*prometheus.Desc{}}
	for _, m := range report.Metrics() {
		if m.Live != report.AtEnd {
			c.metrics = append(c.metrics, m)
		}
	}
	return c
}

// Update replaces the variant's snapshot.
func (c *Collector) Update(s Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.snaps[s.Variant]; !ok {
		c.order = append(c.order, s.Variant)
	}
	c.snaps[s.Variant] = s
}

// Describe sends nothing: the series a run has are known only as it runs
// (an unchecked collector).
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends every live metric and the latest sample of every series of
// every variant so far.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	taken := map[string]bool{}
	for _, m := range c.metrics {
		taken[MetricName(m)] = true
	}
	for _, name := range c.order {
		s := c.snaps[name]
		labels := []string{s.Scenario, s.Variant}
		ch <- prometheus.MustNewConstMetric(c.desc("bench_elapsed_seconds", "seconds since the variant's load started"), prometheus.GaugeValue, s.ElapsedS, labels...)
		for _, m := range c.metrics {
			if v, ok := m.Value(&s.Result); ok {
				ch <- prometheus.MustNewConstMetric(c.desc(MetricName(m), m.Doc+" (so far)"), prometheus.GaugeValue, v, labels...)
			}
		}
		for series, v := range s.Series {
			n := SeriesName(series)
			if series == report.SeriesT || taken[n] {
				continue // the time axis; a series a metric already names
			}
			ch <- prometheus.MustNewConstMetric(c.desc(n, "latest sample of the series "+series+" (docs/results.md)"), prometheus.GaugeValue, v, labels...)
		}
	}
}

func (c *Collector) desc(name, help string) *prometheus.Desc {
	d, ok := c.descs[name]
	if !ok {
		d = prometheus.NewDesc(name, help, []string{"scenario", "variant"}, nil)
		c.descs[name] = d
	}
	return d
}
