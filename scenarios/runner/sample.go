package runner

import (
	"context"
	"sync"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/procstat"
	"github.com/benchmq/bench/report"
)

// sampleEvery is the resolution of the time series (issue: ≤250 ms).
const sampleEvery = 250 * time.Millisecond

// series holds the time series of a variant, all columns of equal length,
// and the highest value of each so far (the peaks, live and at the end).
type series struct {
	mu   sync.Mutex
	cols map[string][]float64
	max  map[string]float64
}

func (s *series) add(row map[string]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cols == nil {
		s.cols, s.max = map[string][]float64{}, map[string]float64{}
	}
	n := len(s.cols[report.SeriesT])
	for k, v := range row {
		s.max[k] = max(s.max[k], v)
		col := s.cols[k]
		for len(col) < n {
			col = append(col, 0) // a column that appears late starts with zeros
		}
		s.cols[k] = append(col, v)
	}
	for k, col := range s.cols {
		if len(col) == n {
			s.cols[k] = append(col, 0)
		}
	}
}

func (s *series) snapshot() map[string][]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]float64, len(s.cols))
	for k, v := range s.cols {
		out[k] = append([]float64(nil), v...)
	}
	return out
}

// peak returns the highest value of a column so far (0 without samples).
func (s *series) peak(col string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max[col]
}

// latest returns the latest value of every column.
func (s *series) latest() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]float64, len(s.cols))
	for k, c := range s.cols {
		if len(c) > 0 {
			out[k] = c[len(c)-1]
		}
	}
	return out
}

// sampler reads queue depths, the workers' telemetry and their RSS.
type sampler struct {
	v        *variantRun
	out      *series
	lastT    time.Time
	lastPub  int64
	lastDone int64
	lastCPU  time.Duration

	lastCounts broker.QueueCounts // the broker's last answer (management API)
	lastMem    int64
	lastProc   map[int]time.Duration // each process's CPU time at the last sample
}

func (sm *sampler) run(ctx context.Context, start time.Time) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	sm.lastT = start
	for {
		select {
		case <-ctx.Done():
			sm.sample(time.Now(), start)
			return
		case now := <-t.C:
			sm.sample(now, start)
		}
	}
}

func (sm *sampler) sample(now, start time.Time) {
	v := sm.v
	row := map[string]float64{report.SeriesT: now.Sub(start).Seconds()}
	if ready, consumers, err := v.watch.depth(v.queue); err == nil {
		row[report.SeriesQueueReady] = float64(ready)
		row[report.SeriesQueueConsumers] = float64(consumers)
		// Each worker process has one consumer on the queue; more means a
		// consumer outside the run takes jobs, which then look lost.
		// An own worker may consume with several channels: not judged.
		if extra := int64(consumers - v.sc.Workers.Processes); !v.sc.OwnWorker() && extra > v.foreign.Load() {
			v.foreign.Store(extra)
		}
	} else {
		// The runner's connection is reconnecting (its node went away): the
		// last reading stands, rather than a 0 that looks like a drop.
		row[report.SeriesQueueReady] = sm.out.last(report.SeriesQueueReady)
		row[report.SeriesQueueConsumers] = sm.out.last(report.SeriesQueueConsumers)
	}
	var retry int64
	for _, q := range v.retryQueues {
		if n, _, err := v.watch.depth(q); err == nil {
			retry += n
		}
	}
	row[report.SeriesQueueRetry] = float64(retry)
	dead := v.watch.dead.Load()
	row[report.SeriesQueueDead] = float64(dead) // cumulative: the runner consumes .dead to count it

	var inflight, unacked, heap, gor, open, rssTelemetry int64
	for _, s := range v.coll.workerStats() {
		inflight += s.InFlight
		unacked += s.Unacked
		heap = max(heap, s.HeapBytes)
		gor = max(gor, int64(s.Goroutines))
		rssTelemetry = max(rssTelemetry, s.RSSBytes)
		if s.BreakerState == "open" {
			open++
		}
	}
	// RSS and CPU straight from /proc for the processes we own, each with
	// its descendants (a worker may be a tree: npm start, a shell script):
	// right even for a paused worker that cannot report.
	var rss, rssTotal int64
	pids := v.procs.pids()
	us, errs, err := procstat.TreesUsage(pids)
	if err == nil {
		for i, u := range us {
			if errs[i] == nil {
				rss = max(rss, u.RSS)
				rssTotal += u.RSS
			}
		}
	}
	if rss == 0 {
		rss = rssTelemetry
	}
	row[report.SeriesWorkerRSS] = float64(rss)
	row[report.SeriesWorkerRSSTotal] = float64(rssTotal)
	if own, err := procstat.RSS(0); err == nil {
		row[report.SeriesRunnerRSS] = float64(own) // the harness's own memory: a soak holds it flat
	}
	row[report.SeriesWorkerHeap] = float64(heap)
	row[report.SeriesWorkerInflight] = float64(inflight)
	if counts, mem, ok := sm.brokerFigures(); ok {
		// The broker counts what it delivered and has not had acked.
		unacked = counts.Unacked
		row[report.SeriesBrokerMemory] = float64(mem)
	} else if unacked == 0 {
		// The runtime does not see what its client library prefetched, so the
		// broker-side view is derived: every confirmed job without a final outcome
		// is ready, waiting in a retry tier, or delivered and not yet acked.
		unacked = max(0, v.ledger.Outstanding()-int64(row[report.SeriesQueueReady])-retry)
	}
	row[report.SeriesQueueUnacked] = float64(unacked)
	row[report.SeriesGoroutines] = float64(gor)
	row[report.SeriesBreakerOpen] = float64(open)

	pub := v.published.Load()
	done := v.coll.completed.Load()
	// The same reading gives the CPU: /proc is read once per sample.
	cpu := v.cpu.update(pids, us, errs, err)
	row[report.SeriesWorkerCPU] = cpu.Seconds()
	dt := now.Sub(sm.lastT).Seconds()
	if dt > 0 {
		row[report.SeriesPublishRate] = float64(pub-sm.lastPub) / dt
		row[report.SeriesCompleteRate] = float64(done-sm.lastDone) / dt
		row[report.SeriesWorkerCPUCores] = (cpu - sm.lastCPU).Seconds() / dt
	}
	row[report.SeriesWorkerCPUCoresMax], sm.lastProc = v.cpu.busiest(sm.lastProc, dt)
	row[report.SeriesIntendedRate] = v.intendedRate(now.Sub(start))
	row[report.SeriesPublished] = float64(pub)
	row[report.SeriesCompleted] = float64(done)
	row[report.SeriesFailures] = float64(v.coll.failures.Load())
	sm.clientRow(row)
	sm.lastT, sm.lastPub, sm.lastDone, sm.lastCPU = now, pub, done, cpu
	sm.out.add(row)
}

// brokerFigures reads the job queue's counts and the broker's memory from the
// management API, when the broker has it; ok is false without it or when it
// did not answer within the sample's time.
func (sm *sampler) brokerFigures() (broker.QueueCounts, int64, bool) {
	st := sm.v.env.stats
	if st == nil {
		return broker.QueueCounts{}, 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), sampleEvery)
	defer cancel()
	c, err := st.Queue(ctx, sm.v.queue)
	var mem int64
	if err == nil {
		mem, err = st.Memory(ctx)
	}
	if err != nil {
		// A slow or restarting broker: hold the last figures rather than mix
		// in the derivation, which reads differently.
		return sm.lastCounts, sm.lastMem, sm.v.brokerStats.Load()
	}
	sm.v.brokerStats.Store(true)
	sm.lastCounts, sm.lastMem = c, mem
	return c, mem, true
}
