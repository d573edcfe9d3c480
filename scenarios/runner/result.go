package runner

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/report"
)

// collect turns what the variant measured into its result.
func (v *variantRun) collect(rv *report.Variant, out loadOutcome, interrupted bool) {
	g, start, loadEnd, drainEnd := out.gen, out.start, out.loadEnd, out.drainAt
	drained := out.drained || interrupted || rv.Aborted != nil
	c := v.ledger.Counts()
	rv.Ledger = report.Ledger{
		Published: c.Published, Confirmed: c.Confirmed, Unconfirmed: c.Unconfirmed,
		Succeeded: c.Succeeded, Recovered: c.Recovered, DeadLettered: c.DeadLettered, Finished: c.Final,
		Lost: c.Lost, Duplicates: c.Duplicates, Redelivered: c.Redelivered, Retries: c.Retries,
		TIDMismatches: c.TIDMismatches, Emitted: c.Emitted, Unobserved: v.unobserved(),
	}
	rv.Worker = v.workerInfo()
	if v.bb != nil {
		rv.Warnings = append(rv.Warnings, v.bb.warnings()...)
	}
	if v.sc.Job.Emit != "" && c.Emitted < c.Succeeded {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("%d jobs succeeded but only %d emitted events were seen", c.Succeeded, c.Emitted))
	}
	if n := v.foreign.Load(); n > 0 {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("up to %d consumers outside this run were on queue %s: jobs they took are not accounted and count as lost", n, v.queue))
	}
	if c.Unknown > 0 {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("%d outcomes for jobs this run never published", c.Unknown))
	}
	if c.Lost > 0 {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("lost jobs (first sequence numbers): %v", v.ledger.LostSeqs(10)))
	}

	e2e, proc := v.coll.merged()
	pc := g.ConfirmLatency
	if pc == nil {
		pc = newHist()
	}
	rv.LatencyMS = report.Latencies{EndToEnd: summarize(e2e), PublishConfirm: summarize(pc), Processing: summarize(proc)}
	rv.Histograms = map[string]string{}
	for kind, h := range map[string]*hdrhistogram.Histogram{"end_to_end": e2e, "publish_confirm": pc, "processing": proc} {
		if s, err := report.EncodeHistogram(h); err == nil {
			rv.Histograms[kind] = s
		}
	}

	load := loadEnd.Sub(start).Seconds()
	rv.LoadSeconds = load
	active := drainEnd.Sub(start).Seconds()
	if load > 0 {
		rv.Throughput.PublishPerS = float64(c.Published) / load
	}
	if active > 0 {
		rv.Throughput.CompletePerS = float64(c.Final) / active
	}
	rv.DrainSeconds = drainEnd.Sub(loadEnd).Seconds()
	if !drained {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("drain timed out after %s with %d jobs outstanding", v.sc.DrainTimeout, c.Lost))
	}
	rv.LateSends, rv.LateMaxMS = g.LateSends, float64(g.LateMax)/float64(time.Millisecond)
	rv.Lateness = lateness(g)
	if nonSpike := nonSpikeJobs(v.phases); nonSpike > 0 && float64(g.LateSends) > 0.01*float64(nonSpike) {
		if g.Reconnects > 0 || g.BlockedTime > 0 {
			// The broker was gone or blocked publishers: the sends waited for it.
			rv.Warnings = append(rv.Warnings, fmt.Sprintf("%d of %d sends were late (worst %.0f ms) while the broker was unreachable or blocking publishers (%d reconnects, blocked %s)", g.LateSends, nonSpike, rv.LateMaxMS, g.Reconnects, g.BlockedTime.Round(time.Millisecond)))
		} else {
			rv.HarnessBound = true
			rv.Warnings = append(rv.Warnings, fmt.Sprintf("the load generator fell behind schedule: %d of %d sends were late (worst %.0f ms); latencies are the harness's, not the workers'", g.LateSends, nonSpike, rv.LateMaxMS))
		}
	}

	rv.Series = v.samples.snapshot()
	secs, p50, p99 := v.coll.perSecond()
	if len(secs) > 0 {
		// Per-second latency lives on its own time axis, seconds since load start.
		sec := make([]float64, len(secs))
		for i, s := range secs {
			sec[i] = float64(s)
		}
		rv.Series[report.SeriesLatencyT] = sec
		rv.Series[report.SeriesP50MS] = p50
		rv.Series[report.SeriesP99MS] = p99
	}

	rv.Breaker = v.breaker()
	rv.Peak = v.peaks()
	rv.WorkerCPUSeconds = out.cpu.Seconds()
	rv.RunnerCPUSeconds = out.runnerCPU.Seconds()
	rv.BrokerStats = report.BrokerStatsDerived
	if v.brokerStats.Load() {
		rv.BrokerStats = report.BrokerStatsManagement
	}
	rv.Calibration = v.calibration
	rv.Warnings = append(rv.Warnings, v.warnings...)
	rv.Faults = v.faults(out.applied, start, c.Lost)
	v.addImpacts(rv.Faults, out)
	if rv.Aborted != nil {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("aborted %.1fs after the load started: counts are as far as the run got, and jobs without an outcome yet count as lost", rv.Aborted.AtS))
	}
	if interrupted {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("interrupted %.1fs after the load started: counts are as far as the run got, and jobs without an outcome yet count as lost", drainEnd.Sub(start).Seconds()))
	}
}

// unobserved names the ledger counts the workers' mode cannot see: a black
// box's retries and redeliveries happen inside it.
func (v *variantRun) unobserved() []string {
	if v.sc.BlackBox() {
		return []string{"redelivered", "retries"}
	}
	return nil
}

// breaker sums the workers' breaker figures so far.
func (v *variantRun) breaker() report.Breaker {
	var b report.Breaker
	for _, s := range v.coll.workerStats() {
		b.Opened += s.BreakerOpened
		b.OpenSeconds += s.BreakerOpenSec
	}
	return b
}

// peaks are the maxima of the sampled series so far, as the metric table
// names them.
func (v *variantRun) peaks() report.Peak {
	peak := func(col string) int64 { return int64(v.samples.peak(col)) }
	return report.Peak{
		WorkerRSSBytes:   peak(report.SeriesWorkerRSS),
		WorkerHeapBytes:  peak(report.SeriesWorkerHeap),
		QueueReady:       peak(report.SeriesQueueReady),
		QueueUnacked:     peak(report.SeriesQueueUnacked),
		WorkerInflight:   peak(report.SeriesWorkerInflight),
		QueueRetry:       peak(report.SeriesQueueRetry),
		QueueDead:        peak(report.SeriesQueueDead),
		WorkerGoroutines: peak(report.SeriesGoroutines),
		WorkerCPUCores:   v.samples.peak(report.SeriesWorkerCPUCoresMax),
	}
}

func summarize(h *hdrhistogram.Histogram) report.Summary { return report.Summarize(h) }

// lateness summarises the generator's accuracy; nil without timed sends.
func lateness(g loadgen.Result) *report.Lateness {
	if g.Lateness == nil || g.Lateness.TotalCount() == 0 {
		return nil
	}
	l := &report.Lateness{Summary: summarize(g.Lateness), ThresholdMS: float64(loadgen.DefaultLateThreshold) / float64(time.Millisecond), Late: g.LateSends}
	l.LateFraction = float64(l.Late) / float64(l.Count)
	return l
}

func nonSpikeJobs(phases []loadgen.Phase) int64 {
	var n int64
	for _, p := range phases {
		if p.Kind != loadgen.KindSpike {
			n += p.Count()
		}
	}
	return n
}
