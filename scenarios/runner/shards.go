package runner

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/benchmq/bench/internal/agent"
	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// shardsRef holds a variant's shards once the agents stage made them: read
// by telemetry goroutines and the dispatcher.
type shardsRef struct{ atomic.Pointer[shards] }

// shard is one generator agent's part of the load: the phases at its share
// of the rate, and the sequence numbers [first, first+n).
type shard struct {
	a        *remoteAgent
	phases   []loadgen.Phase
	first, n int64
	next     int64 // the next sequence number not yet known published (dispatcher)
	done     bool  // its generator reported its result
	died     bool  // its agent died before that
}

// shardPhase is agent k of n's share of p: a spike's jobs split as evenly as
// they go, a rate divided by n.
func shardPhase(p loadgen.Phase, k, n int) loadgen.Phase {
	switch p.Kind {
	case loadgen.KindSpike:
		jobs := p.Jobs
		p.Jobs = jobs / int64(n)
		if int64(k) < jobs%int64(n) {
			p.Jobs++
		}
	case loadgen.KindSteady:
		p.Rate /= float64(n)
	case loadgen.KindRamp:
		p.From /= float64(n)
		p.To /= float64(n)
	}
	return p
}

// shards is the generators' sequence ranges and the outcomes that arrived
// before the publish of their job was relayed (from another agent, they may
// overtake it): they wait until it is.
type shards struct {
	mu     sync.Mutex
	v      *variantRun
	list   []*shard // by first
	parked []parkedOutcome
}

// outcomeSink takes an outcome: a collector connection, or a guarded one.
type outcomeSink interface{ Outcome(o telemetry.Outcome) }

type parkedOutcome struct {
	conn outcomeSink
	o    telemetry.Outcome
	sh   *shard
}

func newShards(v *variantRun, load []scenarios.Phase, gens []*remoteAgent) *shards {
	s := &shards{v: v}
	var first int64
	for k, a := range gens {
		sh := &shard{a: a, first: first, next: first}
		for _, p := range load {
			sp := shardPhase(p.Phase, k, len(gens))
			sh.phases = append(sh.phases, sp)
			sh.n += sp.Count()
		}
		a.shard = sh
		first += sh.n
		s.list = append(s.list, sh)
	}
	return s
}

// of returns the shard holding seq, or nil.
func (s *shards) of(seq int64) *shard {
	if s == nil {
		return nil
	}
	i := sort.Search(len(s.list), func(i int) bool { return s.list[i].first+s.list[i].n > seq })
	if i < len(s.list) && seq >= s.list[i].first {
		return s.list[i]
	}
	return nil
}

// outcome applies o now, or parks it until its publish is known.
func (s *shards) outcome(c outcomeSink, o telemetry.Outcome) {
	sh := s.of(o.Seq)
	if sh != nil && o.Intended > 0 {
		o.Intended = sh.a.offset.FromPeer(o.Intended)
	}
	if sh == nil {
		c.Outcome(o)
		return
	}
	s.mu.Lock()
	if o.Seq >= sh.next {
		s.parked = append(s.parked, parkedOutcome{conn: c, o: o, sh: sh})
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	c.Outcome(o)
}

// published notes that seq went out.
func (s *shards) published(seq int64) {
	if sh := s.of(seq); sh != nil {
		s.mu.Lock()
		sh.next = max(sh.next, seq+1)
		s.mu.Unlock()
	}
}

// replay applies the parked outcomes whose publish is now known. At the
// end (final) it applies the rest: of a shard whose agent died, a job that a
// worker finished was published and taken by the broker, whatever the
// relay lost, so it is recorded as such; otherwise the ledger counts it as
// an outcome of a job never published.
func (s *shards) replay(final bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	var apply []parkedOutcome
	keep := s.parked[:0]
	for _, p := range s.parked {
		if p.o.Seq < p.sh.next || final {
			apply = append(apply, p)
		} else {
			keep = append(keep, p)
		}
	}
	s.parked = keep
	s.mu.Unlock()
	for _, p := range apply {
		if final && p.o.Seq >= p.sh.next && p.sh.died {
			s.v.ledger.Published(p.o.Seq)
			s.v.ledger.Confirmed(p.o.Seq, true)
			s.v.published.Add(1)
		}
		p.conn.Outcome(p.o)
	}
}

// shardResult is a shard's generator result.
type shardResult struct {
	agent.GenDone
	a *remoteAgent
}

// mergeShards adds the shards' results up into one, on the runner's clock.
func mergeShards(done []shardResult) (loadgen.Result, error) {
	res := loadgen.Result{ConfirmLatency: hdrhistogram.New(1, 3_600_000_000, 3), Stats: loadgen.Stats{Done: len(done) > 0}}
	for _, d := range done {
		st := d.Stats
		res.Published += st.Published
		res.Confirmed += st.Confirmed
		res.Nacked += st.Nacked
		res.Unconfirmed += st.Unconfirmed
		res.LateSends += st.LateSends
		res.LateMax = max(res.LateMax, st.LateMax)
		res.Reconnects += st.Reconnects
		res.BlockedTime += st.BlockedTime
		res.Done = res.Done && st.Done
		if d.ConfirmLatency != "" {
			h, err := report.DecodeHistogram(d.ConfirmLatency)
			if err != nil {
				return res, err
			}
			res.ConfirmLatency.Merge(h)
		}
		if d.FirstSend != 0 {
			first := time.Unix(0, d.a.offset.FromPeer(d.FirstSend))
			if res.FirstSend.IsZero() || first.Before(res.FirstSend) {
				res.FirstSend = first
			}
			if last := time.Unix(0, d.a.offset.FromPeer(d.LastSend)); last.After(res.LastSend) {
				res.LastSend = last
			}
		}
		for i, n := range d.PublishedPerSecond {
			for len(res.PublishedPerSecond) <= i {
				res.PublishedPerSecond = append(res.PublishedPerSecond, 0)
			}
			res.PublishedPerSecond[i] += n
		}
		for i, ps := range d.PhaseStarts {
			if i >= len(res.PhaseStarts) {
				res.PhaseStarts = append(res.PhaseStarts, time.Duration(ps))
			} else {
				res.PhaseStarts[i] = max(res.PhaseStarts[i], time.Duration(ps))
			}
		}
	}
	return res, nil
}

// relay applies one agent's relayed events: its workers' telemetry (times
// corrected to the runner's clock) and its generator's publishes.
type relay struct {
	v     *variantRun
	a     *remoteAgent
	conns map[int]telemetry.Conn
}

func newRelay(v *variantRun, a *remoteAgent) *relay {
	return &relay{v: v, a: a, conns: map[int]telemetry.Conn{}}
}

func (h *relay) conn(w int) telemetry.Conn {
	c := h.conns[w]
	if c == nil {
		c = h.v.coll.accept(telemetry.Hello{Worker: w, Host: h.a.hello.Host})
		h.conns[w] = c
	}
	return c
}

func (h *relay) Hello(hl telemetry.Hello) {
	if hl.Host == "" {
		hl.Host = h.a.hello.Host
	}
	h.conns[hl.Worker] = h.v.coll.accept(hl)
}

func (h *relay) Ready(w int) { h.conn(w).Ready() }

func (h *relay) Outcome(w int, o telemetry.Outcome) {
	o.Done = h.a.offset.FromPeer(o.Done)
	h.v.shards.Load().outcome(h.conn(w), o)
}

func (h *relay) Redelivered(w int, seq int64) { h.conn(w).Redelivered(seq) }

func (h *relay) Stats(w int, s telemetry.Stats) {
	s.At = h.a.offset.FromPeer(s.At)
	h.conn(w).Stats(s)
}

func (h *relay) Bye(w int) { h.conn(w).Bye() }

func (h *relay) Published(seq int64) {
	h.v.ledger.Published(seq)
	h.v.published.Add(1)
	h.v.shards.Load().published(seq)
}

func (h *relay) Confirmed(seq int64, ack bool) { h.v.ledger.Confirmed(seq, ack) }

// acceptTelemetry is the runner's telemetry listener's accept: the
// collector's, and when agents publish, outcomes of the runner's own
// workers wait for their job's publish as relayed ones do.
func (v *variantRun) acceptTelemetry(h telemetry.Hello) telemetry.Conn {
	c := v.coll.accept(h)
	if v.sc.Placement.Generators.Agents == 0 {
		return c
	}
	return &parkingConn{Conn: c, v: v}
}

// parkingConn routes a local worker's outcomes through the shards. A
// parked outcome is applied later by the dispatcher, so the connection's
// histograms are guarded.
type parkingConn struct {
	telemetry.Conn
	v  *variantRun
	mu sync.Mutex
}

func (p *parkingConn) Outcome(o telemetry.Outcome) { p.v.shards.Load().outcome(lockedOutcome{p}, o) }

// lockedOutcome applies outcomes to a parkingConn's collector connection
// under its lock.
type lockedOutcome struct{ p *parkingConn }

func (l lockedOutcome) Outcome(o telemetry.Outcome) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	l.p.Conn.Outcome(o)
}

// deadLetterHook is how the runner records a dead letter when agents
// publish: like a worker's outcome, it waits for its job's relayed publish.
// nil (the ledger at once) otherwise.
func (v *variantRun) deadLetterHook() func(seq int64, attempts int) {
	if v.sc.Placement.Generators.Agents == 0 {
		return nil
	}
	return func(seq int64, attempts int) {
		v.shards.Load().outcome(deadLetterSink{v.ledger}, telemetry.Outcome{Seq: seq, Attempt: attempts})
	}
}

// deadLetterSink records an outcome as a dead letter in the ledger.
type deadLetterSink struct{ l *ledger.Ledger }

func (s deadLetterSink) Outcome(o telemetry.Outcome) {
	s.l.Final(o.Seq, ledger.DeadLettered, o.Attempt)
}
