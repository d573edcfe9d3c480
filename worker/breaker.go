package worker

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

func (w *Worker) newBreaker() *gobreaker.TwoStepCircuitBreaker[struct{}] {
	b := w.cfg.Breaker
	// In half-open every goroutine may run one probe job, so none is turned away and
	// requeued in a loop; MaxRequests consecutive successes close the breaker.
	maxReq := max(w.cfg.Concurrency*len(w.handlers), 1)
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        w.cfg.App,
		MaxRequests: uint32(maxReq),
		Interval:    b.Window,
		Timeout:     b.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= uint32(b.MinRequests) &&
				float64(c.TotalFailures)/float64(c.Requests) >= b.FailureRatio
		},
		IsExcluded:    func(err error) bool { return errors.Is(err, errExcluded) },
		OnStateChange: func(_ string, from, to gobreaker.State) { w.breakerChanged(from, to) },
	})
}

// breakerChanged runs inside the breaker's lock: record, notify, never block.
func (w *Worker) breakerChanged(from, to gobreaker.State) {
	now := w.now()
	w.brMu.Lock()
	switch {
	case from == gobreaker.StateClosed:
		w.brSince = now
		w.stats.breakerOpened.Add(1)
	case to == gobreaker.StateClosed:
		w.brTotal += now.Sub(w.brSince)
		w.brSince = time.Time{}
	}
	w.brMu.Unlock()
	w.log.Info("circuit breaker changed", "from", from.String(), "to", to.String())
	if to == gobreaker.StateOpen {
		select {
		case w.brOpened <- struct{}{}:
		default:
		}
	}
	if w.cfg.OnBreakerChange != nil {
		w.cfg.OnBreakerChange(from.String(), to.String())
	}
}

// breakerOpenTime is the total time the breaker spent away from closed.
func (w *Worker) breakerOpenTime() time.Duration {
	w.brMu.Lock()
	defer w.brMu.Unlock()
	t := w.brTotal
	if !w.brSince.IsZero() {
		t += w.now().Sub(w.brSince)
	}
	return t
}

// breakerLoop stops the consumers while the breaker is open, so jobs wait in the queue
// instead of burning attempts, and restarts them once a probe succeeds.
func (w *Worker) breakerLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.brOpened:
		}
		w.pause()
		for {
			if !w.awaitHalfOpen(ctx) {
				return
			}
			if w.probe(ctx) {
				break
			}
		}
		select {
		case <-w.brOpened: // the probe's own reopening, already handled
		default:
		}
		w.resume()
	}
}

func (w *Worker) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paused || w.stopping {
		return
	}
	w.paused = true
	w.intakeOff.Store(true)
	if w.sess != nil {
		w.stopConsumersLocked(w.sess)
	}
	w.log.Warn("circuit breaker open: consumers cancelled", "open_for", w.cfg.Breaker.OpenFor)
}

func (w *Worker) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.paused || w.stopping {
		return
	}
	w.paused = false
	w.intakeOff.Store(false)
	if w.sess == nil {
		return // the next session starts its consumers
	}
	for _, c := range w.sess.cons {
		if c.active {
			continue
		}
		if err := w.startConsumerLocked(w.sess, c); err != nil {
			w.log.Warn("restart consumer after breaker", "queue", c.h.queue, "err", err)
			w.sess.kill() // reconnecting starts it again
			return
		}
	}
	w.log.Info("circuit breaker probing: consumers restarted")
}

// awaitHalfOpen waits until the open period is over.
func (w *Worker) awaitHalfOpen(ctx context.Context) bool {
	wait := w.cfg.Breaker.OpenFor
	for w.breaker().State() == gobreaker.StateOpen {
		if !sleepCtx(ctx, wait) {
			return false
		}
		// The breaker's own clock may lag ours by a hair.
		wait = 10 * time.Millisecond
	}
	return true
}

// probe checks health: with a HealthCheck by calling it, otherwise by handling a single
// job fetched with basic.get. It reports whether consuming may resume; a failed probe
// reopens the breaker.
func (w *Worker) probe(ctx context.Context) bool {
	if hc := w.cfg.Breaker.HealthCheck; hc != nil {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if w.cfg.Timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, w.cfg.Timeout)
		}
		err := hc(pctx)
		cancel()
		if err == nil {
			return true
		}
		w.log.Warn("circuit breaker health check failed", "err", err)
		if done, aerr := w.breaker().Allow(); aerr == nil {
			done(err)
		}
		return false
	}
	s, err := w.session(ctx)
	if err != nil {
		return false
	}
	for _, c := range s.cons {
		d, ok, err := c.ch.Get(c.h.queue, false)
		if err != nil {
			w.log.Warn("circuit breaker probe: get", "queue", c.h.queue, "err", err)
			return false
		}
		if !ok {
			continue
		}
		w.handle(s, c.h, &d)
		return w.breaker().State() != gobreaker.StateOpen
	}
	// Nothing to probe with: resume half-open and let the first jobs decide.
	return true
}
