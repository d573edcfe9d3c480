package perf

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/benchmq/bench/internal/loadgen"
)

// accuracyFigure is one steady run of the load generator: how many sends were
// later than loadgen.DefaultLateThreshold after their intended time, and the
// lateness distribution, in ms.
type accuracyFigure struct {
	rate                float64 // asked for, jobs/s
	sent, late          int64
	p50, p99, p999, max float64
	achieved            float64 // sends per second from the first to the last
}

// accuracy runs the generator alone at rate for AccuracyFor into a fresh queue
// nobody consumes (the broker only stores): what one generator process holds.
func (r *run) accuracy(ctx context.Context, rate float64) (accuracyFigure, error) {
	q := queueName()
	defer r.cleanup(q)
	if err := r.admin.declare(q); err != nil {
		return accuracyFigure{}, err
	}
	g, err := loadgen.New(loadgen.Config{
		URL: r.cfg.URL, RoutingKey: q, RunID: "perf",
		Phases: []loadgen.Phase{{Kind: loadgen.KindSteady, Rate: rate, For: r.cfg.AccuracyFor, Size: r.cfg.Size}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// As the runner hooks them (into its ledger).
		OnPublished: func(int64) {},
		OnConfirmed: func(int64, bool, time.Duration) {},
	})
	if err != nil {
		return accuracyFigure{}, err
	}
	res, err := g.Run(ctx, time.Now())
	if err != nil {
		return accuracyFigure{}, fmt.Errorf("run load generator at %.0f/s: %w", rate, err)
	}
	h := res.Lateness
	ms := func(us int64) float64 { return float64(us) / 1e3 }
	f := accuracyFigure{rate: rate, sent: h.TotalCount(), late: res.LateSends,
		p50: ms(h.ValueAtQuantile(50)), p99: ms(h.ValueAtQuantile(99)), p999: ms(h.ValueAtQuantile(99.9)), max: ms(h.Max())}
	if d := res.LastSend.Sub(res.FirstSend); d > 0 && f.sent > 1 {
		f.achieved = float64(f.sent-1) / d.Seconds()
	}
	return f, nil
}

// accuracyRep measures every rate once, for repetition i.
func (r *run) accuracyRep(ctx context.Context, i int) error {
	if !r.cfg.has(SectionAccuracy) {
		return nil
	}
	for _, rate := range r.cfg.AccuracyRates {
		f, err := r.accuracy(ctx, rate)
		if err != nil {
			return err
		}
		r.rep.addAccuracy(i, f)
		r.progress("rep %d/%d accuracy %6.0f/s: %d sends, %d later than %s (%.2f%%), p99 %.2f ms, max %.1f ms",
			i+1, r.cfg.Repeat, rate, f.sent, f.late, loadgen.DefaultLateThreshold, 100*float64(f.late)/float64(max(f.sent, 1)), f.p99, f.max)
	}
	return nil
}
