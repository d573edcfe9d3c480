package runner

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/report"
)

// Latency histograms record microseconds from 1 µs to 1 hour, 3 significant digits.
const (
	histMin  = 1
	histMax  = 3_600_000_000
	histSigs = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSigs) }

func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	_ = h.RecordValue(us)
}

// collector receives the workers' telemetry: it feeds the ledger and keeps one
// set of histograms per connection (histograms are not goroutine-safe), merged
// at the end.
type collector struct {
	ledger *ledger.Ledger
	// blackBox: outcomes come from outside the workers (completion events);
	// what a worker reports over telemetry besides its stats is not counted
	// twice.
	blackBox bool

	completed atomic.Int64 // final outcomes reported by workers (with duplicates)
	failures  atomic.Int64 // sum of workers' failed attempts, for fault detection

	mu      sync.Mutex
	conns   []*conn
	hello   []telemetry.Hello // every process that said hello, in order (respawns too)
	ready   map[int]bool
	readyCh chan struct{} // signalled on every Ready
	stats   map[int]telemetry.Stats
	// per-second end-to-end latency (2 significant digits keeps them small);
	// seconds well in the past are reduced to their p50/p99 and their
	// histogram reused, so a long run holds a few histograms, not one a second.
	perSec    map[int64]*hdrhistogram.Histogram
	secDone   map[int64][2]float64
	secMax    int64
	spare     []*hdrhistogram.Histogram
	loadStart atomic.Int64 // Unix ns; 0 until the load starts
	// live is end-to-end latency so far, for the live figures and abort
	// gates (2 significant digits: the connections' own histograms are not
	// safe to read while they record).
	live *hdrhistogram.Histogram
	// settled is end-to-end latency of the jobs intended at least settleNS
	// after the load start: a max-rate search step's judged part. nil: off.
	settled  *hdrhistogram.Histogram
	settleNS int64
}

func newCollector(l *ledger.Ledger) *collector {
	return &collector{
		ledger:  l,
		ready:   map[int]bool{},
		readyCh: make(chan struct{}, 1),
		stats:   map[int]telemetry.Stats{},
		perSec:  map[int64]*hdrhistogram.Histogram{},
		secDone: map[int64][2]float64{},
		live:    hdrhistogram.New(histMin, histMax, 2),
	}
}

type conn struct {
	c          *collector
	hello      telemetry.Hello
	e2e, proc  *hdrhistogram.Histogram
	lastFailed int64
	// outside: the runner's own view of a black-box worker (completion
	// events): no processing time, no stats.
	outside bool
}

func (c *collector) accept(h telemetry.Hello) telemetry.Conn {
	cn := &conn{c: c, hello: h, e2e: newHist(), proc: newHist()}
	c.mu.Lock()
	c.conns = append(c.conns, cn)
	c.hello = append(c.hello, h)
	c.mu.Unlock()
	return cn
}

// external returns a connection of the runner's own, for outcomes it sees
// from outside a worker (black-box): one per goroutine that reports.
func (c *collector) external() *conn {
	cn := &conn{c: c, hello: telemetry.Hello{Worker: -1}, e2e: newHist(), proc: newHist(), outside: true}
	c.mu.Lock()
	c.conns = append(c.conns, cn)
	c.mu.Unlock()
	return cn
}

// helloCount is how many worker processes said hello so far.
func (c *collector) helloCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.hello)
}

// hellos returns every hello so far, in order.
func (c *collector) hellos() []telemetry.Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]telemetry.Hello(nil), c.hello...)
}

func (cn *conn) Ready() {
	c := cn.c
	c.mu.Lock()
	c.ready[cn.hello.Worker] = true
	c.mu.Unlock()
	select {
	case c.readyCh <- struct{}{}:
	default:
	}
}

func (c *collector) readyCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ready)
}

func (cn *conn) Outcome(o telemetry.Outcome) {
	if cn.c.blackBox && !cn.outside {
		return
	}
	kind := ledger.Succeeded
	if o.Kind == telemetry.Recovered {
		kind = ledger.Recovered
	}
	cn.final(kind, o)
}

// deadLettered records a dead letter seen from outside a worker (a black
// box's dead queue): a final outcome whose latency counts when it is the
// job's first.
func (cn *conn) deadLettered(seq, intended, done int64) {
	cn.final(ledger.DeadLettered, telemetry.Outcome{Seq: seq, Intended: intended, Done: done})
}

func (cn *conn) final(kind ledger.Outcome, o telemetry.Outcome) {
	c := cn.c
	first := c.ledger.Final(o.Seq, kind, o.Attempt)
	c.completed.Add(1)
	if !first {
		return // a duplicate's latency would count one job twice
	}
	if o.Intended > 0 {
		e2e := time.Duration(o.Done - o.Intended)
		recordMicros(cn.e2e, e2e)
		c.mu.Lock()
		recordMicros(c.live, e2e)
		if start := c.loadStart.Load(); start > 0 {
			c.recordSecond((o.Done-start)/int64(time.Second), e2e)
			if c.settled != nil && o.Intended-start >= c.settleNS {
				recordMicros(c.settled, e2e)
			}
		}
		c.mu.Unlock()
	}
	if !cn.outside {
		recordMicros(cn.proc, o.Processing)
	}
}

// secWindow is how long a second stays open for late outcomes before it is
// reduced to its percentiles.
const secWindow = 5

func (c *collector) recordSecond(sec int64, e2e time.Duration) {
	if _, closed := c.secDone[sec]; closed {
		return // an outcome more than secWindow seconds late: its second is summarised
	}
	h := c.perSec[sec]
	if h == nil {
		if n := len(c.spare); n > 0 {
			h, c.spare = c.spare[n-1], c.spare[:n-1]
		} else {
			h = hdrhistogram.New(histMin, histMax, 2)
		}
		c.perSec[sec] = h
	}
	recordMicros(h, e2e)
	if sec > c.secMax {
		c.secMax = sec
		for s, old := range c.perSec {
			if s < sec-secWindow {
				c.secDone[s] = [2]float64{float64(old.ValueAtQuantile(50)) / 1000, float64(old.ValueAtQuantile(99)) / 1000}
				delete(c.perSec, s)
				old.Reset()
				c.spare = append(c.spare, old)
			}
		}
	}
}

func (cn *conn) Redelivered(seq int64) {
	if !cn.c.blackBox {
		cn.c.ledger.Redelivered()
	}
}

func (cn *conn) Stats(s telemetry.Stats) {
	c := cn.c
	if d := s.Failed - cn.lastFailed; d > 0 {
		c.failures.Add(d)
	}
	cn.lastFailed = s.Failed
	c.mu.Lock()
	c.stats[s.Worker] = s
	c.mu.Unlock()
}

func (cn *conn) Bye() {}

// workerStats returns the latest stats of every worker index.
func (c *collector) workerStats() []telemetry.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]telemetry.Stats, 0, len(c.stats))
	for _, s := range c.stats {
		out = append(out, s)
	}
	return out
}

// liveEndToEnd summarises end-to-end latency so far.
func (c *collector) liveEndToEnd() report.Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	return report.Summarize(c.live)
}

// merged returns the merged end-to-end and processing histograms.
func (c *collector) merged() (e2e, proc *hdrhistogram.Histogram) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e2e, proc = newHist(), newHist()
	for _, cn := range c.conns {
		e2e.Merge(cn.e2e)
		proc.Merge(cn.proc)
	}
	return e2e, proc
}

// perSecond returns p50 and p99 (ms) of end-to-end latency per second of the run.
func (c *collector) perSecond() (secs []int64, p50, p99 []float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := int64(0); s <= c.secMax; s++ {
		secs = append(secs, s)
		switch h, done := c.perSec[s], c.secDone[s]; {
		case h != nil:
			p50 = append(p50, float64(h.ValueAtQuantile(50))/1000)
			p99 = append(p99, float64(h.ValueAtQuantile(99))/1000)
		default:
			p50, p99 = append(p50, done[0]), append(p99, done[1])
		}
	}
	if len(c.perSec) == 0 && len(c.secDone) == 0 {
		return nil, nil, nil
	}
	return secs, p50, p99
}

// settle makes the collector keep, besides everything, the end-to-end
// latency of the jobs intended at least d after the load start.
func (c *collector) settle(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settled, c.settleNS = newHist(), int64(d)
}

// settledEndToEnd summarises the latency settle asked for.
func (c *collector) settledEndToEnd() report.Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.settled == nil {
		return report.Summary{}
	}
	return report.Summarize(c.settled)
}
