package worker

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a worker's counters and gauges.
type Stats struct {
	InFlight     int64  // jobs being handled (or sleeping between in-process retries)
	Started      uint64 // attempts started
	Acked        uint64 // jobs acked after a successful attempt
	Retried      uint64 // retries scheduled
	Recovered    uint64 // recovery functions run
	DeadLettered uint64 // jobs published to their dead queue
	Failed       uint64 // attempts that failed (errors, timeouts, panics)
	Requeued     uint64 // deliveries requeued without an attempt charged (breaker, shutdown)

	BreakerState    string        // "closed", "half-open", "open", or "disabled"
	BreakerOpened   uint64        // times the breaker left closed
	BreakerOpenTime time.Duration // total time away from closed

	ConsumerActive  bool   // at least one consumer is registered with the broker
	ConsumerCancels uint64 // consumers the broker cancelled (queue deleted, leader moved), each restored
	// ConsumersLost are consumers the broker dropped without a basic.cancel, found by
	// Config.ConsumerCheck and restored.
	ConsumersLost uint64
	Reconnects    uint64 // sessions rebuilt after connection or channel loss
	Blocked       bool   // the broker has blocked the connection (resource alarm)

	Abandoned int64 // handlers still running past their attempt's deadline, left behind
}

type counters struct {
	inFlight      atomic.Int64
	started       atomic.Uint64
	acked         atomic.Uint64
	retried       atomic.Uint64
	recovered     atomic.Uint64
	deadLettered  atomic.Uint64
	failed        atomic.Uint64
	requeued      atomic.Uint64
	breakerOpened atomic.Uint64
	consumers     atomic.Int64
	cancels       atomic.Uint64
	lost          atomic.Uint64
	abandoned     atomic.Int64
	reconnects    atomic.Uint64
	blocked       atomic.Bool
}

// Stats returns a snapshot; it is cheap and safe to call at any time, from any
// goroutine, including OnBreakerChange.
func (w *Worker) Stats() Stats {
	s := Stats{
		InFlight:        w.stats.inFlight.Load(),
		Started:         w.stats.started.Load(),
		Acked:           w.stats.acked.Load(),
		Retried:         w.stats.retried.Load(),
		Recovered:       w.stats.recovered.Load(),
		DeadLettered:    w.stats.deadLettered.Load(),
		Failed:          w.stats.failed.Load(),
		Requeued:        w.stats.requeued.Load(),
		BreakerOpened:   w.stats.breakerOpened.Load(),
		ConsumerActive:  w.stats.consumers.Load() > 0,
		ConsumerCancels: w.stats.cancels.Load(),
		ConsumersLost:   w.stats.lost.Load(),
		Reconnects:      w.stats.reconnects.Load(),
		Blocked:         w.stats.blocked.Load(),
		Abandoned:       w.stats.abandoned.Load(),
	}
	// The breaker's state as of its last transition: asking the breaker itself would
	// take its lock, which OnBreakerChange callers must not need.
	s.BreakerState = w.brState.Load().(string)
	if w.breaker() != nil {
		s.BreakerOpenTime = w.breakerOpenTime()
	}
	return s
}
