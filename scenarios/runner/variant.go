package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/chaos/timeline"
	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/procstat"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/internal/simworker"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/live"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/worker"
)

// ErrEnvironment marks failures of the environment (no broker, a worker process
// died, a port taken): exit code 3.
var ErrEnvironment = errors.New("environment failure")

// variantRun is the state of one variant while it runs. Its stages fill it in
// order; teardown undoes whatever they reached.
type variantRun struct {
	r     *Runner
	index int
	v     scenarios.Variant
	sc    *scenarios.Scenario
	dir   string
	runID string
	log   *slog.Logger
	// settle: a max-rate search step, whose latency before settle after the
	// load start is not judged (collector.settle); 0 otherwise.
	settle time.Duration

	// The job's queues (stage environment).
	queue       string
	deadQueue   string
	retryQueues []string

	env         *env                // stage environment
	calibration *report.Calibration // stage calibration; nil when it failed
	warnings    []string            // stage calibration
	own         *ownership          // stage accounting
	ledger      *ledger.Ledger      // stage accounting
	coll        *collector          // stage accounting
	watch       *watcher            // stage accounting
	tel         *telemetry.Server   // stage accounting
	telErrs     chan error          // stage accounting
	procs       *procs              // stage workers
	gen         *loadgen.Generator  // stage load
	phases      []loadgen.Phase     // stage load
	samples     *series             // stage load
	cpu         *cpuMeter           // stage load
	bb          *blackBox           // stage load, black-box workers only
	intended    *intendedTable      // stage load, black-box workers only
	remote      *remote             // stage agents, with placement only (remote.go)
	shards      shardsRef           // stage agents: the generator agents' sequence ranges (read by telemetry and the dispatcher)

	// Background work of the load stage, stopped by teardown.
	stopLoad      context.CancelCauseFunc // ends the load and the drain early (an abort gate)
	stopConsumers context.CancelFunc
	stopFaults    context.CancelFunc
	stopProgress  context.CancelFunc
	stopSampling  context.CancelFunc
	bg            sync.WaitGroup
	teardownOnce  sync.Once

	published   atomic.Int64
	brokerStats atomic.Bool  // a sample read the broker's own figures (management API)
	foreign     atomic.Int64 // most consumers on the queue that were not the run's
	leader      atomic.Int64 // the node leading the job's quorum queue on a cluster; 0: none
	aborted     atomic.Pointer[report.Abort]
}

// loadOutcome is what the load stage measured.
type loadOutcome struct {
	gen                     loadgen.Result
	start, loadEnd, drainAt time.Time
	drained                 bool
	cpu                     time.Duration // the workers' CPU time from the load start to the drain's end
	runnerCPU               time.Duration // this process's (the runner's and the generator's) over the same window
	applied                 []timeline.Applied
	err                     error
}

func (v *variantRun) envErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEnvironment, fmt.Sprintf(format, args...))
}

// run executes the variant's stages in order: environment, calibration,
// accounting, workers, load (with faults and drain), teardown, result. It always returns
// a report.Variant holding what was measured; err is set when the environment
// failed or ctx was cancelled.
func (v *variantRun) run(ctx context.Context) (report.Variant, error) {
	rv := report.Variant{Name: v.v.Name, Params: v.v.Params, Series: map[string][]float64{}, Faults: []report.Fault{}, Gates: []report.Gate{}}
	if rv.Params == nil {
		rv.Params = map[string]any{}
	}
	defer v.teardown()
	stages := []struct {
		name string
		run  func(context.Context) error
	}{
		{"environment", v.upEnvironment},
		{"calibration", v.calibrate},
		{"accounting", v.startAccounting},
		{"agents", v.joinAgents},
		{"workers", v.startWorkers},
		{"load", v.prepareLoad},
	}
	for _, st := range stages {
		if err := st.run(ctx); err != nil {
			if ctx.Err() != nil {
				return rv, ctx.Err()
			}
			return rv, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	out := v.execute(ctx)
	// Everything is stopped before the result is read, so it is complete.
	v.teardown()
	rv.Aborted = v.aborted.Load()
	v.collect(&rv, out, ctx.Err() != nil)
	v.collectAgents(&rv, out.start)
	if f := v.r.opts.OnSnapshot; f != nil {
		f(live.Snapshot{Scenario: v.r.sc.Name, Variant: v.v.Name, ElapsedS: out.drainAt.Sub(out.start).Seconds(), Result: rv, Series: v.samples.latest()})
	}
	if out.err == nil && ctx.Err() != nil {
		out.err = ctx.Err()
	}
	return rv, out.err
}

// upEnvironment brings up the broker, the proxies and the simulated dependency.
func (v *variantRun) upEnvironment(ctx context.Context) error {
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return v.envErr("create %s: %v", v.dir, err)
	}
	cluster, err := v.r.clusterFor(ctx, v.sc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	e, err := upEnv(ctx, v.sc, v.r.opts.AMQPURL, cluster, v.log)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	v.env = e
	v.r.setBroker(e.version, e.broker.Kind())
	v.log.Info("broker", "url", redact.URL(e.directURL), "kind", e.broker.Kind(), "version", e.version)
	v.setQueues()
	return nil
}

// setQueues names the queues the variant watches: the jobs' queue (where
// job.publish puts them, or the task's or the event's), and where final
// failures wait: the runtime's dead-letter queue, or a black box's
// completion.dead_queue (none without one).
func (v *variantRun) setQueues() {
	switch {
	case v.sc.Job.Publish.Queue != "":
		v.queue = v.sc.Job.Publish.Queue
	case v.sc.Task != "":
		v.queue = worker.TaskQueue(v.sc.Task)
	default:
		v.queue = worker.EventQueue(v.sc.App, v.sc.Event)
	}
	if v.sc.BlackBox() {
		v.deadQueue = v.sc.Completion.DeadQueue
		return
	}
	v.deadQueue = worker.DeadQueue(v.queue)
	v.retryQueues = worker.RetryQueues(v.queue, v.sc.Workers.Retry)
}

// startAccounting opens what counts every job: the ledger, the runner's own
// broker connection (which claims the variant's queues: queues.go) and the
// telemetry listener the workers report to.
func (v *variantRun) startAccounting(context.Context) error {
	v.ledger = newLedger(v.sc)
	v.coll = newCollector(v.ledger)
	if v.settle > 0 {
		v.coll.settle(v.settle)
	}
	v.coll.blackBox = v.sc.BlackBox()
	w, err := newWatcher(v.env.directURLs(), v.ledger, v.tidFor, v.log)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEnvironment, redact.Error(err, v.env.directURL))
	}
	v.watch = w
	v.own = v.newOwnership()
	if err := v.own.claim(v.watch); err != nil {
		if errors.Is(err, ErrEnvironment) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	v.telErrs = make(chan error, 4)
	tel, err := telemetry.Listen("127.0.0.1:0", v.acceptTelemetry, func(err error) {
		select {
		case v.telErrs <- err:
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	v.tel = tel
	return nil
}

// startWorkers writes the worker config, spawns the processes and waits until
// every one consumes. The broker URL goes to them in their environment, never
// in a file under the output directory.
func (v *variantRun) startWorkers(ctx context.Context) error {
	if v.sc.OwnWorker() {
		return v.startOwnWorkers(ctx)
	}
	if v.sc.Placement.Workers.Agents > 0 {
		return v.startRemoteWorkers(ctx)
	}
	wc := simworker.FromScenario(v.sc)
	wc.DependencyURL = v.env.depURL
	wc.Seed = v.r.seed + int64(v.index)
	cfgPath := filepath.Join(v.dir, "worker.json")
	if err := simworker.WriteConfig(cfgPath, wc); err != nil {
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	v.procs = newProcs(simSpec(v.r.workerArgv, cfgPath, v.tel.Addr(), v.env.workerEnv()), v.dir, v.r.seed+int64(v.index))
	if err := v.procs.startAll(v.sc.Workers.Processes); err != nil {
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	return v.waitReady(ctx, v.sc.Workers.Processes, 90*time.Second)
}

// prepareLoad starts the runner's consumers of dead letters and emitted events
// and configures the load generator.
func (v *variantRun) prepareLoad(ctx context.Context) error {
	consumeCtx, stop := context.WithCancel(ctx)
	v.stopConsumers = stop
	if err := v.startConsumers(consumeCtx); err != nil {
		if errors.Is(err, ErrEnvironment) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	exchange, key := v.destination()
	message, err := v.messageHook()
	if err != nil {
		return err
	}
	v.phases = make([]loadgen.Phase, len(v.sc.Load))
	for i, p := range v.sc.Load {
		v.phases[i] = p.Phase
	}
	if v.sc.Placement.Generators.Agents > 0 {
		return nil // the agents publish (remote.go)
	}
	gen, err := loadgen.New(loadgen.Config{
		URL:        v.env.genURL,
		URLs:       tail(v.env.genURLs),
		Exchange:   exchange,
		RoutingKey: key,
		Phases:     v.phases,
		RunID:      v.runID,
		Logger:     v.log,
		OnPublished: func(seq int64) {
			v.ledger.Published(seq)
			v.published.Add(1)
		},
		OnConfirmed: func(seq int64, ack bool, _ time.Duration) { v.ledger.Confirmed(seq, ack) },
		Message:     message,
	})
	if err != nil {
		return fmt.Errorf("configure load generator: %w", err)
	}
	v.gen = gen
	return nil
}

// startConsumers starts the runner's consumers: of the dead letters and
// emitted events of the simulated worker and the runtime (white-box), or of a
// black box's completion events and dead queue.
func (v *variantRun) startConsumers(ctx context.Context) error {
	switch modeOf(v.sc) {
	case modeBlackBox:
		v.intended = &intendedTable{}
		v.bb = &blackBox{v: v}
		return v.bb.start(ctx)
	case modeWhiteBox:
		// The service's dead-letter queue: the runtime's name for the queue,
		// holding the run's jobs only by their headers; anything else in it
		// stays there.
		_, exists, err := v.watch.inspectQueue(v.deadQueue)
		if err != nil {
			return err
		}
		if !exists {
			v.log.Warn("the runtime's dead-letter queue does not exist: dead letters are not counted", "queue", v.deadQueue)
			return nil
		}
		return v.watch.consumeDead(ctx, v.deadQueue, deadLetters{hold: true, mine: func(d *amqp.Delivery) (int64, bool) {
			seq, ok := seqHeader(d)
			tid, _ := d.Headers[worker.HeaderTID].(string)
			return seq, ok && tid == v.tidFor(seq)
		}})
	}
	if err := v.watch.consumeDead(ctx, v.deadQueue, deadLetters{mine: seqHeader, record: v.deadLetterHook()}); err != nil {
		return err
	}
	if v.sc.Job.Emit != "" {
		return v.watch.consumeEmitted(ctx, v.sc.Job.Emit)
	}
	return nil
}

// destination is where the jobs are published: job.publish, or the task's
// queue, or the event's exchange.
func (v *variantRun) destination() (exchange, key string) {
	p := v.sc.Job.Publish
	switch {
	case p.Exchange != "":
		return p.Exchange, p.RoutingKey
	case p.Queue != "":
		return "", p.Queue
	case v.sc.Event != "":
		return v.sc.Event, ""
	}
	return "", v.queue
}

// execute runs the load with the sampler, the live state (progress line,
// abort gates) and the fault timeline beside it, then drains. An abort gate
// ends the load and skips the drain. From its start on, whatever happens,
// what was measured goes into the result.
func (v *variantRun) execute(ctx context.Context) loadOutcome {
	out := loadOutcome{start: time.Now()}
	v.coll.loadStart.Store(out.start.UnixNano())
	if v.intended != nil {
		v.intended.begin(out.start)
	}
	v.samples = &series{}
	v.cpu = newCPUMeter()
	v.cpu.begin(v.procs.pids())
	runnerCPU := procstat.SelfCPU()
	sm := &sampler{v: v, out: v.samples}
	sampleCtx, stopSampling := context.WithCancel(context.WithoutCancel(ctx))
	v.stopSampling = stopSampling
	v.bg.Go(func() { sm.run(sampleCtx, out.start) })
	if v.watchesLeader() {
		v.bg.Go(func() { v.pollLeader(sampleCtx) })
	}
	loadCtx, stopLoad := context.WithCancelCause(ctx)
	v.stopLoad = stopLoad
	liveCtx, stopProgress := context.WithCancel(ctx)
	v.stopProgress = stopProgress
	v.bg.Go(func() { v.watchLive(liveCtx, out.start) })

	faultCtx, stopFaults := context.WithCancel(context.WithoutCancel(ctx))
	v.stopFaults = stopFaults
	var faults sync.WaitGroup
	if len(v.sc.Faults) > 0 {
		tl, err := timeline.New(v.faultSpecs(), v.targets(), nil)
		if err != nil {
			out.err = fmt.Errorf("%w: %w", ErrEnvironment, err)
			out.loadEnd, out.drainAt = out.start, out.start
			return out
		}
		faults.Go(func() { out.applied = tl.Run(faultCtx, out.start) })
	}

	var genErr error
	out.gen, genErr = v.runLoad(loadCtx, out.start)
	if genErr != nil && loadCtx.Err() == nil {
		out.err = fmt.Errorf("%w: load generator: %w", ErrEnvironment, redact.Error(genErr, v.env.genURL))
	}
	out.loadEnd = time.Now()
	if out.err == nil && loadCtx.Err() == nil {
		out.drained, out.err = v.drain(loadCtx, v.sc.DrainTimeout)
	}
	if context.Cause(loadCtx) == errAborted {
		out.err = nil // the variant ends with its verdict, not an error
	}
	if out.err == nil && loadCtx.Err() == nil {
		// A fault the machine made late (a node's restart outlasting its
		// plan delays the next broker action) still runs: the drain waits
		// for the timeline, within drain_timeout.
		v.waitFaults(loadCtx, &faults, v.sc.DrainTimeout-time.Since(out.loadEnd))
	}
	out.drainAt = time.Now()
	out.cpu = v.cpu.read(v.procs.pids())
	out.runnerCPU = procstat.SelfCPU() - runnerCPU
	// Every fault is undone before the workers stop; the timeline's goroutine
	// writes out.applied.
	stopFaults()
	faults.Wait()
	return out
}

// teardown undoes the variant in one order, whatever stage it reached, once.
func (v *variantRun) teardown() {
	v.teardownOnce.Do(func() {
		// Faults first: every toxic, downed proxy, stopped node or paused worker
		// is restored before anything else stops, so no fault outlives the run.
		if v.stopFaults != nil {
			v.stopFaults()
		}
		if v.stopLoad != nil {
			v.stopLoad(context.Canceled)
		}
		if v.stopProgress != nil {
			v.stopProgress()
		}
		// The workers stop (SIGTERM, SIGKILL after 30 s) while telemetry and the
		// sampler still run: every outcome they report arrives, and the last
		// sample sees them gone.
		// Agents stop theirs the same way and send their last events.
		v.releaseAgents()
		if v.procs != nil {
			v.procs.stopAll(30 * time.Second)
		}
		if v.stopSampling != nil {
			v.stopSampling()
		}
		v.bg.Wait()
		// The runner's consumers (dead letters, events), then the telemetry
		// listener: nothing reports any more.
		if v.stopConsumers != nil {
			v.stopConsumers()
		}
		if v.tel != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = v.tel.Close(cctx)
			cancel()
		}
		// Remove the queues the run created: leave a shared broker as it was found.
		if v.watch != nil {
			if v.own != nil {
				if err := v.own.release(v.watch); err != nil {
					v.log.Warn("delete the run's queues", "err", err)
				}
			}
			v.watch.close()
		}
		// The environment last: everything above talks to it.
		if v.env != nil {
			v.env.down(context.Background(), v.log)
		}
	})
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
func (v *variantRun) drain(ctx context.Context, timeout time.Duration) (bool, error) {
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
		case err := <-v.telErrs:
			return false, fmt.Errorf("%w: telemetry: %w", ErrEnvironment, err)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func (v *variantRun) tidFor(seq int64) string { return loadgen.TID(v.runID, seq) }
