package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/benchmq/bench/chaos/timeline"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/worker"
)

// maxLostSeqs bounds the lost jobs attributed to faults: beyond it the
// figures would not change the verdict, and the scan is the ledger's.
const maxLostSeqs = 1 << 20

// leaderPollEvery is how often the job queue's leader is asked for; an
// election takes seconds.
const leaderPollEvery = 250 * time.Millisecond

// watchesLeader reports whether the variant follows the job queue's leader:
// a quorum queue on a cluster.
func (v *variantRun) watchesLeader() bool {
	return v.env != nil && v.env.cluster != nil && v.sc.Queue.Type == worker.QueueQuorum
}

// pollLeader keeps v.leader at the node leading the job's queue (0 while it
// has none) until ctx ends.
func (v *variantRun) pollLeader(ctx context.Context) {
	t := time.NewTicker(leaderPollEvery)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		i, err := v.env.cluster.Leader(qctx, v.queue)
		cancel()
		if err != nil {
			i = 0
		}
		v.leader.Store(int64(i))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clientRow adds to a sample what each fault's client figures are computed
// from: the ledger's running counts, the workers consuming, the leader.
func (sm *sampler) clientRow(row map[string]float64) {
	v := sm.v
	c := v.ledger.Running()
	row[report.SeriesConfirmed] = float64(c.Confirmed)
	row[report.SeriesUnconfirmed] = float64(c.Unconfirmed)
	row[report.SeriesDuplicates] = float64(c.Duplicates)
	row[report.SeriesRedelivered] = float64(c.Redelivered)
	var consuming int
	for _, s := range v.coll.workerStats() {
		if s.ConsumerActive {
			consuming++
		}
	}
	row[report.SeriesWorkersConsuming] = float64(consuming)
	if v.watchesLeader() {
		row[report.SeriesQueueLeader] = float64(v.leader.Load())
	}
}

// addImpacts fills in how each fault hit the clients (timeline.Impacts):
// faults[i] is out.applied[i]'s.
func (v *variantRun) addImpacts(faults []report.Fault, out loadOutcome) {
	if len(faults) != len(out.applied) || v.samples == nil {
		return
	}
	cols := v.samples.snapshot()
	sec := func(t time.Time) float64 { return t.Sub(out.start).Seconds() }
	s := timeline.ImpactSeries{
		T:           cols[report.SeriesT],
		Leader:      cols[report.SeriesQueueLeader],
		Consumers:   consumersSeries(cols),
		Workers:     v.sc.Workers.Processes,
		Confirmed:   cols[report.SeriesConfirmed],
		LoadEnd:     sec(out.loadEnd),
		Published:   cols[report.SeriesPublished],
		Duplicates:  cols[report.SeriesDuplicates],
		Redelivered: cols[report.SeriesRedelivered],
		Unconfirmed: cols[report.SeriesUnconfirmed],
		Lost:        v.ledger.LostSeqs(maxLostSeqs),
		// The last window ends with the drain, less two samples: a sample's
		// readings come after its tick on a busy machine, and must not show
		// the workers being stopped.
		End: sec(out.drainAt) - 2*sampleEvery.Seconds(),
	}
	for i, m := range timeline.Impacts(out.applied, out.start, s) {
		f := &faults[i]
		f.Node = out.applied[i].Node
		f.DeletedMessages = int64(out.applied[i].Deleted)
		f.WindowEndS = m.WindowEnd
		f.Lost, f.Unconfirmed, f.Duplicates, f.Redelivered = m.Lost, m.Unconfirmed, m.Duplicates, m.Redelivered
		var notes []string
		f.LeaderSeconds = clientFigure(m.LeaderSeconds, "the queue had no leader", &notes)
		f.ConsumeSeconds = clientFigure(m.ConsumeSeconds, "not every worker consumed", &notes)
		f.ConfirmSeconds = clientFigure(m.ConfirmSeconds, "the generator's confirms did not flow", &notes)
		if len(notes) > 0 {
			f.ClientNote = fmt.Sprintf("at the end of the fault's window (%.1fs): %s", m.WindowEnd, joinNotes(notes))
		}
	}
}

// clientFigure is a figure of timeline.Impact as the result writes it: nil
// when not observed (NaN) or not reached (-1, noted).
func clientFigure(x float64, notReached string, notes *[]string) *float64 {
	switch {
	case x != x: // NaN
		return nil
	case x < 0:
		*notes = append(*notes, notReached)
		return nil
	}
	return &x
}

func joinNotes(notes []string) string {
	out := notes[0]
	for _, n := range notes[1:] {
		out += "; " + n
	}
	return out
}

// consumersSeries is how many workers consumed at each sample: the lower of
// the broker's consumer count on the job's queue (a consumer the broker
// dropped without telling the worker is not one) and the workers' own
// reports, when they report.
func consumersSeries(cols map[string][]float64) []float64 {
	broker, workers := cols[report.SeriesQueueConsumers], cols[report.SeriesWorkersConsuming]
	if broker == nil {
		return nil
	}
	reporting := false
	for _, w := range workers {
		reporting = reporting || w > 0
	}
	out := make([]float64, len(broker))
	for i, b := range broker {
		out[i] = b
		if reporting && i < len(workers) {
			out[i] = min(b, workers[i])
		}
	}
	return out
}

// last returns the latest value of a column (0 before any).
func (s *series) last(col string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cols[col]
	if len(c) == 0 {
		return 0
	}
	return c[len(c)-1]
}
