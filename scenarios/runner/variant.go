package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/internal/simworker"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/gate"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/worker"
)

// ErrEnvironment marks failures of the environment (no broker, a worker process
// died, a port taken): exit code 3.
var ErrEnvironment = errors.New("environment failure")

// variantRun is the state of one variant while it runs.
type variantRun struct {
	r       *Runner
	index   int
	v       scenarios.Variant
	sc      *scenarios.Scenario
	dir     string
	runID   string
	env     *env
	watch   *watcher
	coll    *collector
	ledger  *ledger.Ledger
	procs   *procs
	gen     *loadgen.Generator
	samples *series

	queue       string
	deadQueue   string
	retryQueues []string

	published atomic.Int64
	foreign   atomic.Int64 // most consumers on the queue that were not the run's
	phases    []loadgen.Phase
}

func (v *variantRun) envErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEnvironment, fmt.Sprintf(format, args...))
}

// run executes the variant. It always returns a report.Variant holding what was
// measured; err is set when the environment failed or ctx was cancelled.
func (v *variantRun) run(ctx context.Context) (rv report.Variant, err error) {
	sc := v.sc
	rv = report.Variant{Name: v.v.Name, Params: v.v.Params, Series: map[string][]float64{}, Faults: []report.Fault{}, Gates: []report.Gate{}}
	if rv.Params == nil {
		rv.Params = map[string]any{}
	}
	log := v.r.log.With("variant", v.v.Name)
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return rv, v.envErr("create %s: %v", v.dir, err)
	}

	v.env, err = upEnv(ctx, sc, v.r.opts.AMQPURL, log)
	if err != nil {
		return rv, fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	defer v.env.down(context.WithoutCancel(ctx), log)
	v.r.setBroker(v.env.version, v.env.broker.Kind())
	log.Info("broker", "url", redact.URL(v.env.directURL), "kind", v.env.broker.Kind(), "version", v.env.version)

	if sc.Task != "" {
		v.queue = worker.TaskQueue(sc.Task)
	} else {
		v.queue = worker.EventQueue(sc.App, sc.Event)
	}
	v.deadQueue = worker.DeadQueue(v.queue)
	wc := simworker.FromScenario(sc)
	v.retryQueues = worker.RetryQueues(v.queue, wc.RetryPolicy())

	v.ledger = ledger.New()
	v.coll = newCollector(v.ledger)
	v.watch, err = newWatcher(v.env.directURL, v.ledger, v.tidFor, log)
	if err != nil {
		return rv, fmt.Errorf("%w: %w", ErrEnvironment, redact.Error(err, v.env.directURL))
	}
	defer v.watch.close()
	if err := v.watch.cleanQueues(v.ownQueues()); err != nil {
		return rv, fmt.Errorf("%w: %w", ErrEnvironment, err)
	}

	telErrs := make(chan error, 4)
	tel, err := telemetry.Listen("127.0.0.1:0", v.coll.accept, func(err error) {
		select {
		case telErrs <- err:
		default:
		}
	})
	if err != nil {
		return rv, fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tel.Close(cctx)
	}()

	wc.URL = v.env.workerURL
	wc.DependencyURL = v.env.depURL
	wc.Seed = v.r.seed + int64(v.index)
	cfgPath := filepath.Join(v.dir, "worker.json")
	if err := simworker.WriteConfig(cfgPath, wc); err != nil {
		return rv, fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	v.procs = newProcs(v.r.workerArgv, cfgPath, tel.Addr(), v.dir, v.r.seed+int64(v.index))
	defer v.procs.stopAll(30 * time.Second)
	if err := v.procs.startAll(sc.Workers.Processes); err != nil {
		return rv, fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	if err := v.waitReady(ctx, sc.Workers.Processes, 90*time.Second); err != nil {
		return rv, err
	}

	consumeCtx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	if err := v.watch.consumeDead(consumeCtx, v.deadQueue); err != nil {
		return rv, fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	if sc.Job.Emit != "" {
		if err := v.watch.consumeEvents(consumeCtx, sc.Job.Emit); err != nil {
			return rv, fmt.Errorf("%w: %w", ErrEnvironment, err)
		}
	}

	exchange, key := "", v.queue
	if sc.Event != "" {
		exchange, key = sc.Event, ""
	}
	v.phases = toPhases(sc.Load)
	v.gen, err = loadgen.New(loadgen.Config{
		URL:        v.env.genURL,
		Exchange:   exchange,
		RoutingKey: key,
		Phases:     v.phases,
		RunID:      v.runID,
		Logger:     log,
		OnPublished: func(seq int64) {
			v.ledger.Published(seq)
			v.published.Add(1)
		},
		OnConfirmed: func(seq int64, ack bool, _ time.Duration) { v.ledger.Confirmed(seq, ack) },
	})
	if err != nil {
		return rv, fmt.Errorf("configure load generator: %w", err)
	}

	// From here on, whatever happens, what was measured goes into the result.
	start := time.Now()
	v.coll.loadStart.Store(start.UnixNano())
	v.samples = &series{}
	sm := &sampler{v: v, out: v.samples}
	var bg sync.WaitGroup
	sampleCtx, stopSampling := context.WithCancel(context.WithoutCancel(ctx))
	bg.Go(func() { sm.run(sampleCtx, start) })
	progCtx, stopProgress := context.WithCancel(ctx)
	bg.Go(func() { v.r.progress(progCtx, v, start) })

	faultCtx, stopFaults := context.WithCancel(context.WithoutCancel(ctx))
	var applied []fault.Applied
	if len(sc.Faults) > 0 {
		tl, err := fault.NewTimeline(faultSpecs(sc.Faults), v.targets(), nil)
		if err != nil {
			stopFaults()
			stopSampling()
			stopProgress()
			bg.Wait()
			return rv, fmt.Errorf("%w: %w", ErrEnvironment, err)
		}
		bg.Go(func() { applied = tl.Run(faultCtx, start) })
	}

	var runErr error
	genRes, genErr := v.gen.Run(ctx, start)
	if genErr != nil && ctx.Err() == nil {
		runErr = fmt.Errorf("%w: load generator: %w", ErrEnvironment, redact.Error(genErr, v.env.genURL))
	}
	loadEnd := time.Now()
	drained := false
	if runErr == nil {
		drained, runErr = v.drain(ctx, sc.DrainTimeout, telErrs)
	}
	drainEnd := time.Now()

	stopFaults()
	stopProgress()
	// Stop the workers before the last sample so the telemetry is complete.
	v.procs.stopAll(30 * time.Second)
	stopSampling()
	bg.Wait()
	stopConsumers()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = tel.Close(cctx)
	cancel()
	// The queues are the run's own: leave a shared broker as it was found.
	if err := v.watch.cleanQueues(v.ownQueues()); err != nil {
		log.Warn("delete the run's queues", "err", err)
	}

	v.fill(&rv, genRes, start, loadEnd, drainEnd, drained || ctx.Err() != nil, applied)
	if ctx.Err() != nil {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("interrupted %.1fs after the load started: counts are as far as the run got, and jobs without an outcome yet count as lost", drainEnd.Sub(start).Seconds()))
	}
	if ctx.Err() != nil && runErr == nil {
		runErr = ctx.Err()
	}
	return rv, runErr
}

func (v *variantRun) waitReady(ctx context.Context, n int, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for v.coll.readyCount() < n {
		select {
		case <-v.coll.readyCh:
		case err := <-v.procs.died:
			return fmt.Errorf("%w: %w", ErrEnvironment, err)
		case <-t.C:
			return v.envErr("%d of %d worker processes ready after %s (logs in %s)", v.coll.readyCount(), n, timeout, v.dir)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// drain waits until every confirmed job has a final outcome, or the timeout.
func (v *variantRun) drain(ctx context.Context, timeout time.Duration, telErrs <-chan error) (bool, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if v.ledger.Outstanding() <= 0 && v.ledger.Pending() == 0 {
			return true, nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return false, nil
		case err := <-v.procs.died:
			return false, fmt.Errorf("%w: %w", ErrEnvironment, err)
		case err := <-telErrs:
			return false, fmt.Errorf("%w: telemetry: %w", ErrEnvironment, err)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func (v *variantRun) tidFor(seq int64) string { return loadgen.TID(v.runID, seq) }

// ownQueues are the queues of the variant's job: deleted before it starts and after it ends.
func (v *variantRun) ownQueues() []string {
	return append([]string{v.queue, v.deadQueue}, v.retryQueues...)
}

func (v *variantRun) fill(rv *report.Variant, g loadgen.Result, start, loadEnd, drainEnd time.Time, drained bool, applied []fault.Applied) {
	c := v.ledger.Counts()
	rv.Ledger = report.Ledger{
		Published: c.Published, Confirmed: c.Confirmed, Unconfirmed: c.Unconfirmed,
		Succeeded: c.Succeeded, Recovered: c.Recovered, DeadLettered: c.DeadLettered,
		Lost: c.Lost, Duplicates: c.Duplicates, Redelivered: c.Redelivered, Retries: c.Retries,
		TIDMismatches: c.TIDMismatches, Emitted: c.Emitted,
	}
	if v.sc.Job.Emit != "" && c.Emitted < c.Succeeded-c.Duplicates {
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
		rv.Series["latency_t_s"] = sec
		rv.Series["p50_ms"] = p50
		rv.Series["p99_ms"] = p99
	}

	var opened int64
	var openSec float64
	for _, s := range v.coll.workerStats() {
		opened += s.BreakerOpened
		openSec += s.BreakerOpenSec
	}
	rv.Breaker = report.Breaker{Opened: opened, OpenSeconds: openSec}
	rv.Peak = v.peaks()
	rv.Faults = v.faults(applied, start, c.Lost)
}

func (v *variantRun) peaks() report.Peak {
	cols := v.samples.snapshot()
	peak := func(col string) int64 {
		var m float64
		for _, x := range cols[col] {
			m = math.Max(m, x)
		}
		return int64(m)
	}
	return report.Peak{
		WorkerRSSBytes:   peak("worker_rss_bytes"),
		WorkerHeapBytes:  peak("worker_heap_bytes"),
		QueueReady:       peak("queue_ready"),
		QueueUnacked:     peak("queue_unacked"),
		WorkerInflight:   peak("worker_inflight"),
		QueueRetry:       peak("queue_retry"),
		QueueDead:        peak("queue_dead"),
		WorkerGoroutines: peak("worker_goroutines"),
	}
}

func summarize(h *hdrhistogram.Histogram) report.Summary { return report.Summarize(h) }

func nonSpikeJobs(phases []loadgen.Phase) int64 {
	var n int64
	for _, p := range phases {
		if p.Kind != loadgen.KindSpike {
			n += p.Count()
		}
	}
	return n
}

// evalGates evaluates the scenario's gates against the variant.
func evalGates(sc *scenarios.Scenario, rv *report.Variant) {
	lookup := gate.Lookup(rv)
	rv.Passed = rv.Error == ""
	for _, g := range sc.Gates {
		if !g.Applies(rv.Params) {
			for k := range g.When {
				if _, ok := rv.Params[k]; !ok {
					rv.Warnings = append(rv.Warnings, fmt.Sprintf("gate %q not evaluated: %s is not a matrix key of this run", g.Source, k))
				}
			}
			continue
		}
		passed, value, err := g.Expr.Eval(lookup)
		rg := report.Gate{Expr: g.Source, Passed: passed && err == nil, Value: value, Display: g.Expr.FormatValue(value)}
		if err != nil {
			rg.Error = err.Error()
		}
		rv.Passed = rv.Passed && rg.Passed
		rv.Gates = append(rv.Gates, rg)
	}
}
