package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Stats are the generator's live counters.
type Stats struct {
	// Published jobs were handed to the connection. Each ends up Confirmed (acked),
	// Nacked, or Unconfirmed (the connection died before the broker answered).
	Published, Confirmed, Nacked, Unconfirmed int64
	// Returned counts publishes the broker could not route (their queue was
	// gone: every publish is mandatory) and returned; they count as nacked
	// for the job (OnConfirmed with ack false), whatever the confirm said.
	Returned int64
	// LateSends counts steady and ramp jobs sent more than the late threshold after
	// their intended time; LateMax is the worst lateness of any such job. Spike
	// jobs are intended all at once, so their lateness is not counted.
	LateSends int64
	LateMax   time.Duration
	// Reconnects counts connections re-established after one died.
	Reconnects int64
	// Blocked is set while the broker has blocked the connection (a resource
	// alarm); publishing waits meanwhile. BlockedTime sums how long it was.
	Blocked     bool
	BlockedTime time.Duration
	// Done is set once every job was published and answered.
	Done bool
}

// Result is what a run measured.
type Result struct {
	Stats
	// ConfirmLatency holds the send-to-ack time of acked publishes in µs
	// (1 µs to 1 h, 3 significant figures).
	ConfirmLatency *hdrhistogram.Histogram
	// Lateness holds how late each steady and ramp job was sent after its
	// intended time, in µs (values under 1 µs as 1): the generator's accuracy.
	// Spike jobs are all due at once and are left out.
	Lateness *hdrhistogram.Histogram
	// FirstSend and LastSend bracket the publishing (zero if nothing was sent).
	FirstSend, LastSend time.Time
	// PublishedPerSecond counts sends per second since the start passed to Run.
	PublishedPerSecond []int64
	// PhaseStarts is when each phase started, relative to the start passed to Run;
	// a phase after a spike starts when the spike's last job was sent. Phases not
	// reached are missing.
	PhaseStarts []time.Duration
}

// Generator publishes one load. Create it with New, run it once with Run.
type Generator struct {
	cfg     Config
	hash    uint64
	started atomic.Bool

	published, confirmed, nacked, unconfirmed atomic.Int64
	returned                                  atomic.Int64
	late, lateMax, reconnects                 atomic.Int64
	blocked                                   atomic.Bool
	blockedSince, blockedTotal                atomic.Int64 // ns
	done                                      atomic.Bool
	// phase is the index of the phase being published plus one (0: none yet);
	// phaseStart is when it started, in ns since the start passed to Run.
	phase      atomic.Int32
	phaseStart atomic.Int64
}

// New validates cfg (reporting every problem at once) and returns a generator.
func New(cfg Config) (*Generator, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configure load generator: %w", err)
	}
	cfg.Phases = append([]Phase(nil), cfg.Phases...)
	return &Generator{cfg: cfg, hash: runHash(cfg.RunID)}, nil
}

// TotalJobs returns how many jobs the generator publishes.
func (g *Generator) TotalJobs() int64 { return TotalJobs(g.cfg.Phases) }

// IntendedRate returns the rate the schedule asks for at since (time since the
// start passed to Run), in jobs/s, for a live series next to the measured
// publish rate. It knows where the current phase really started (a phase after a
// spike starts when the spike's sends ended), so it is meant for times during the
// current phase; a spike, and any time outside the current phase, has none: 0.
func (g *Generator) IntendedRate(since time.Duration) float64 {
	i := int(g.phase.Load()) - 1
	if i < 0 || i >= len(g.cfg.Phases) {
		return 0
	}
	p := g.cfg.Phases[i]
	t := since - time.Duration(g.phaseStart.Load())
	if t < 0 || t >= p.Duration() {
		return 0
	}
	switch p.Kind {
	case KindSteady:
		return p.Rate
	case KindRamp:
		return p.From + (p.To-p.From)*t.Seconds()/p.Over.Seconds()
	}
	return 0
}

// Stats returns the live counters; safe to call at any time from any goroutine.
func (g *Generator) Stats() Stats {
	s := Stats{
		Published:   g.published.Load(),
		Confirmed:   g.confirmed.Load(),
		Nacked:      g.nacked.Load(),
		Unconfirmed: g.unconfirmed.Load(),
		Returned:    g.returned.Load(),
		LateSends:   g.late.Load(),
		LateMax:     time.Duration(g.lateMax.Load()),
		Reconnects:  g.reconnects.Load(),
		Blocked:     g.blocked.Load(),
		BlockedTime: time.Duration(g.blockedTotal.Load()),
		Done:        g.done.Load(),
	}
	if s.Blocked {
		s.BlockedTime += g.cfg.Clock().Sub(time.Unix(0, g.blockedSince.Load()))
	}
	return s
}

// Run publishes the schedule, with start as its time zero, and blocks until
// every job was published and answered (acked, nacked, or given up on when its
// connection died), or ctx ends. When the connection dies Run reconnects with
// backoff until ctx ends and carries on with the next jobs; only a failure to
// connect at all at the start, or a broker refusal that reconnecting cannot fix
// (the exchange does not exist), ends it early with an error. The Result holds
// what was measured even then. Run may be called once.
func (g *Generator) Run(ctx context.Context, start time.Time) (Result, error) {
	if !g.started.CompareAndSwap(false, true) {
		return Result{}, errors.New("run load generator: already run")
	}
	r := newRun(g, start)
	err := r.run(ctx)
	res := Result{
		Stats:              g.Stats(),
		ConfirmLatency:     r.hist,
		Lateness:           r.late,
		FirstSend:          r.firstSend,
		LastSend:           r.lastSend,
		PublishedPerSecond: r.perSecond,
		PhaseStarts:        r.phaseStarts,
	}
	return res, err
}
