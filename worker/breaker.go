package worker

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// transition is one breaker state change waiting for OnBreakerChange.
type transition struct{ from, to string }

// newBreaker builds the breaker. MaxRequests is 1: half-open admits exactly the probe,
// whose success closes the breaker and whose failure opens it again; consumers stay
// cancelled until it is closed, so nothing is turned away and requeued meanwhile.
func (w *Worker) newBreaker() *gobreaker.TwoStepCircuitBreaker[struct{}] {
	b := w.cfg.Breaker
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        w.cfg.App,
		MaxRequests: 1,
		Interval:    b.Window,
		Timeout:     b.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= uint32(b.MinRequests) &&
				float64(c.TotalFailures)/float64(c.Requests) >= b.FailureRatio
		},
		IsSuccessful:  func(err error) bool { return err == nil || !w.isBreakerFailure(err) },
		IsExcluded:    func(err error) bool { return errors.Is(err, errExcluded) },
		OnStateChange: func(_ string, from, to gobreaker.State) { w.breakerChanged(from, to) },
	})
}

// breakerChanged runs inside the breaker's lock: record, queue the notification, never
// block and never call back into the breaker.
func (w *Worker) breakerChanged(from, to gobreaker.State) {
	now := w.now()
	w.brState.Store(to.String())
	w.brMu.Lock()
	switch {
	case from == gobreaker.StateClosed:
		w.brSince = now
		w.stats.breakerOpened.Add(1)
	case to == gobreaker.StateClosed:
		w.brTotal += now.Sub(w.brSince)
		w.brSince = time.Time{}
	}
	if w.cfg.OnBreakerChange != nil {
		w.brEvents = append(w.brEvents, transition{from.String(), to.String()})
	}
	w.brMu.Unlock()
	w.log.Info("circuit breaker changed", "from", from.String(), "to", to.String())
	if w.cfg.OnBreakerChange != nil {
		select {
		case w.brNotify <- struct{}{}:
		default:
		}
	}
	if to == gobreaker.StateOpen {
		select {
		case w.brOpened <- struct{}{}:
		default:
		}
	}
}

// notifyLoop calls OnBreakerChange for every transition, in order, outside the
// breaker's lock; it delivers what is queued when ctx ends, then returns.
func (w *Worker) notifyLoop(ctx context.Context) {
	for {
		select {
		case <-w.brNotify:
		case <-ctx.Done():
		}
		w.brMu.Lock()
		events := w.brEvents
		w.brEvents = nil
		w.brMu.Unlock()
		for _, e := range events {
			w.cfg.OnBreakerChange(e.from, e.to)
		}
		if ctx.Err() != nil {
			return
		}
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
// instead of burning attempts, probes after OpenFor and restarts the consumers once a
// probe has closed the breaker.
func (w *Worker) breakerLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.brOpened:
		}
		w.pause()
		for w.breaker().State() != gobreaker.StateClosed {
			if !w.awaitHalfOpen(ctx) || !w.probe(ctx) {
				return
			}
		}
		select {
		case <-w.brOpened: // a probe's own reopening, already handled
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
	w.log.Info("circuit breaker closed: consumers restarted")
}

// awaitHalfOpen waits until the open period is over; false when ctx ended.
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

// probeInterval is how often a half-open worker looks for a job to probe with.
func (w *Worker) probeInterval() time.Duration {
	return min(max(w.cfg.Breaker.OpenFor/10, 10*time.Millisecond), time.Second)
}

// probe runs the half-open breaker's one request: the HealthCheck if set, otherwise a
// single job fetched with basic.get (waiting for one when the queues are empty). Its
// outcome closes or reopens the breaker. It returns false when ctx ended.
func (w *Worker) probe(ctx context.Context) bool {
	if hc := w.cfg.Breaker.HealthCheck; hc != nil {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if w.cfg.Timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, w.cfg.Timeout)
		}
		err := hc(pctx)
		cancel()
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			w.log.Warn("circuit breaker health check failed", "err", err)
		}
		if done, aerr := w.breaker().Allow(); aerr == nil {
			if err != nil && w.isBreakerFailure(err) {
				done(err)
			} else {
				done(nil)
			}
		}
		return true
	}
	for {
		s, err := w.session(ctx)
		if err != nil {
			return false
		}
		for _, c := range s.cons {
			d, ok, err := c.ch.Get(c.h.queue, false)
			if err != nil {
				w.log.Warn("circuit breaker probe: get", "queue", c.h.queue, "err", err)
				break
			}
			if ok {
				w.handle(s, c.h, &d)
				return true
			}
		}
		if !sleepCtx(ctx, w.probeInterval()) {
			return false
		}
	}
}
