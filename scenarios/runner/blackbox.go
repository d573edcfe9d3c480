package runner

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/worker"
)

// Black-box accounting: a worker that sends no telemetry is seen from the
// outside. Every job carries a TID that encodes the run and its sequence
// number (loadgen.TID); the runner binds a queue of its own to the
// worker's completion events (and failure events), and reads its dead queue,
// and maps each TID back to its job. A job's first completion is its
// success, a failure event or a dead letter its recovery, any later record
// a duplicate; retries and redeliveries happen where bench cannot see them.

// intendedTable holds each job's intended send time, for the end-to-end
// latency of a completion seen from the outside: 4 bytes a job, in units of
// 100 µs since the load started (0: unknown), in chunks like the ledger's.
type intendedTable struct {
	mu     sync.Mutex
	start  time.Time
	chunks [][]uint32
}

const (
	intendedUnit      = 100 * time.Microsecond
	intendedChunkBits = 16
)

// begin sets the time the offsets count from: the load's start.
func (t *intendedTable) begin(start time.Time) {
	t.mu.Lock()
	t.start = start
	t.mu.Unlock()
}

func (t *intendedTable) set(seq int64, intended time.Time) {
	if seq < 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d := intended.Sub(t.start)/intendedUnit + 1
	if d < 1 || d > 1<<32-1 {
		return // before the start, or after 119 hours: not recorded
	}
	ci := int(seq >> intendedChunkBits)
	for len(t.chunks) <= ci {
		t.chunks = append(t.chunks, nil)
	}
	if t.chunks[ci] == nil {
		t.chunks[ci] = make([]uint32, 1<<intendedChunkBits)
	}
	t.chunks[ci][seq&(1<<intendedChunkBits-1)] = uint32(d)
}

// get returns seq's intended send time, Unix ns; 0 when unknown.
func (t *intendedTable) get(seq int64) int64 {
	ci := int(seq >> intendedChunkBits)
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq < 0 || ci >= len(t.chunks) || t.chunks[ci] == nil {
		return 0
	}
	d := t.chunks[ci][seq&(1<<intendedChunkBits-1)]
	if d == 0 {
		return 0
	}
	return t.start.Add(time.Duration(d-1) * intendedUnit).UnixNano()
}

// tidIn reads a TID where p says it is (the runtime's TID header by default).
func tidIn(p scenarios.TIDPlace, d *amqp.Delivery) (string, bool) {
	if p.JSON != "" {
		return loadgen.JSONField(d.Body, p.JSON)
	}
	name := p.Header
	if name == "" {
		name = worker.HeaderTID
	}
	switch v := d.Headers[name].(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	}
	return "", false
}

// blackBox consumes a worker's completion and failure events and its dead
// queue into the ledger.
type blackBox struct {
	v       *variantRun
	foreign atomic.Int64 // events and dead letters that are not this run's jobs
	held    atomic.Int64 // foreign dead letters left in the dead queue
}

// start binds the runner's queues to the completion events and consumes the
// dead queue. It runs once the workers are ready: their topology exists.
func (b *blackBox) start(ctx context.Context) error {
	v := b.v
	c := v.sc.Completion
	events := []struct {
		exchange string
		kind     telemetry.Kind
	}{{c.Event, telemetry.Succeeded}, {c.FailedEvent, telemetry.Recovered}}
	for _, e := range events {
		if e.exchange == "" {
			continue
		}
		declared, err := v.watch.ensureExchange(e.exchange)
		if err != nil {
			return err
		}
		if declared {
			v.own.declared(e.exchange)
			v.log.Info("declared the completion exchange: the worker had not yet", "exchange", e.exchange)
		}
		// One collector connection per consumer: histograms are not goroutine-safe.
		cn := v.coll.external()
		kind := e.kind
		err = v.watch.consumeEvents(ctx, e.exchange, func(d *amqp.Delivery) {
			tid, _ := tidIn(c.TID, d)
			seq, ok := loadgen.ParseTID(v.runID, tid)
			if !ok {
				b.foreign.Add(1)
				return
			}
			cn.Outcome(telemetry.Outcome{Seq: seq, Kind: kind, Intended: v.intended.get(seq), Done: time.Now().UnixNano()})
		})
		if err != nil {
			return err
		}
	}
	if c.DeadQueue != "" {
		_, exists, err := v.watch.inspectQueue(c.DeadQueue)
		if err != nil {
			return err
		}
		if !exists {
			return v.envErr("completion.dead_queue %q does not exist once the workers are ready: the worker declares its own topology; check the name", c.DeadQueue)
		}
		cn := v.coll.external()
		return v.watch.consumeDead(ctx, c.DeadQueue, deadLetters{
			hold: true,
			// The dead letter is the job itself: its TID is where job.tid put it.
			mine: func(d *amqp.Delivery) (int64, bool) {
				tid, ok := tidIn(v.sc.Job.TID, d)
				if !ok {
					tid, _ = tidIn(scenarios.TIDPlace{}, d)
				}
				seq, ok := loadgen.ParseTID(v.runID, tid)
				if !ok {
					b.foreign.Add(1)
					b.held.Add(1)
				}
				return seq, ok
			},
			record: func(seq int64, _ int) { cn.deadLettered(seq, v.intended.get(seq), time.Now().UnixNano()) },
		})
	}
	return nil
}

// warnings say what the black box saw that was not the run's.
func (b *blackBox) warnings() []string {
	var out []string
	if n := b.foreign.Load(); n > 0 {
		out = append(out, fmt.Sprintf("%d completion events or dead letters carried no TID of this run (another publisher, or the TID not where completion.tid says)", n))
	}
	if n := b.held.Load(); n > 0 {
		out = append(out, fmt.Sprintf("%d dead letters in %s were not this run's: left in the queue", n, b.v.sc.Completion.DeadQueue))
	}
	return out
}

// newLedger is the variant's ledger: a black box's dead letters are its
// recoveries too.
func newLedger(sc *scenarios.Scenario) *ledger.Ledger {
	if sc.BlackBox() {
		return ledger.NewWith(ledger.Options{DeadIsRecovery: true})
	}
	return ledger.New()
}
