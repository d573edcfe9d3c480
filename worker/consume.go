package worker

import (
	"errors"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/telemetry"
)

// loop is one of a consumer's goroutines. Goroutines live as long as the consumer, not
// per message, and each acks from where it handled the job.
func (w *Worker) loop(s *session, h *handler, deliveries <-chan amqp.Delivery, seen *atomic.Uint64) {
	defer w.poolWG.Done()
	for d := range deliveries {
		seen.Add(1)
		if w.intakeOff.Load() {
			w.requeue(h, &d)
			continue
		}
		if h.limiter != nil {
			// The token is taken with a delivery in hand: an idle goroutine holds
			// none, so the bucket's burst is the real burst.
			if err := h.limiter.Wait(w.stopCtx); err != nil || w.intakeOff.Load() {
				w.requeue(h, &d)
				continue
			}
		}
		w.handle(s, h, &d)
	}
}

// handle runs a delivery to its outcome: ack, retry, dead-letter or requeue.
func (w *Worker) handle(s *session, h *handler, d *amqp.Delivery) {
	w.stats.inFlight.Add(1)
	h.m.inFlight.Add(1)
	defer func() {
		w.stats.inFlight.Add(-1)
		h.m.inFlight.Add(-1)
	}()
	job := jobFrom(w, h, d)
	w.harness.delivered(job)
	if cause, ok := w.dead.take(h.queue, job.ID); ok {
		// Recovered in an earlier delivery whose dead-letter publish never
		// succeeded: finish that, without running the job or its recovery again.
		w.deadLetter(s, h, job, d, cause)
		return
	}
	for {
		var done func(error)
		if cb := w.breaker(); cb != nil {
			var err error
			if done, err = cb.Allow(); err != nil {
				// The open breaker fails the job without charging an attempt.
				w.requeue(h, d)
				return
			}
		}
		var start time.Time
		if w.harness != nil {
			start = time.Now()
		}
		err := w.attempt(h, job)
		if err != nil && w.hardCtx.Err() != nil {
			// Shutdown cancelled the attempt: not the job's fault.
			if done != nil {
				done(errExcluded)
			}
			w.requeue(h, d)
			return
		}
		if done != nil {
			done(err)
		}
		if err == nil {
			// Under bench the outcome is reported before the ack: an acked job
			// is never counted lost.
			w.harness.succeeded(w, job, start, func(rerr error) {
				if rerr != nil {
					w.log.Error("requeueing the job", "tid", job.TID, "job", job.Name, "id", job.ID, "err", rerr)
					w.requeue(h, d)
					return
				}
				w.ack(h, job, d)
			})
			return
		}
		w.stats.failed.Add(1)
		switch {
		case isMalformed(err):
			w.log.Warn("malformed payload; dead-lettering", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
			w.deadLetter(s, h, job, d, err)
			return
		case IsPermanent(err) || job.Attempt >= h.retry.MaxAttempts:
			w.log.Warn("job failed for good", "tid", job.TID, "job", job.Name, "id", job.ID, "attempt", job.Attempt, "err", err)
			w.recover(h, job, err)
			if h.recovery != nil {
				// Its dead letter is counted too: a failed report loses nothing.
				if rerr := w.harness.final(job, telemetry.Recovered, start); rerr != nil {
					w.log.Error("report a recovered job", "tid", job.TID, "job", job.Name, "id", job.ID, "err", rerr)
				}
			}
			w.deadLetter(s, h, job, d, err)
			return
		}
		delay := w.retryDelay(h, job.Attempt, err)
		w.log.Debug("attempt failed; retrying", "tid", job.TID, "job", job.Name, "id", job.ID, "attempt", job.Attempt, "in", delay, "err", err)
		if h.retry.Mode == RetryBroker {
			w.retry(s, h, job, d, delay)
			return
		}
		if !sleepCtx(w.hardCtx, delay) {
			w.requeue(h, d)
			return
		}
		w.stats.retried.Add(1)
		h.m.retried.Add(1)
		job = job.next()
	}
}

// isBreakerFailure reports whether a failed attempt counts against the breaker: by
// default retriable errors do, permanent and malformed ones do not.
func (w *Worker) isBreakerFailure(err error) bool {
	if errors.Is(err, errExcluded) {
		return false
	}
	if f := w.cfg.Breaker.IsFailure; f != nil {
		return f(err)
	}
	return !IsPermanent(err) && !isMalformed(err)
}

// retryDelay is the wait before the next attempt: the policy's backoff, or a
// RetryAfter's own delay.
func (w *Worker) retryDelay(h *handler, attempt int, err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		if h.retry.Mode == RetryBroker {
			return h.retry.retryAfterDelay(ra.after)
		}
		// Never above MaxDelay, as with the policy's own delays.
		if limit := h.retry.MaxDelay; limit > 0 && ra.after > limit {
			return limit
		}
		return max(ra.after, 0)
	}
	return h.retry.delay(attempt, w.rnd)
}

func (w *Worker) ack(h *handler, job *Job, d *amqp.Delivery) {
	if err := d.Ack(false); err != nil {
		// The channel is gone: the broker redelivers the job (at-least-once).
		w.log.Warn("ack failed; the job will be redelivered", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
		return
	}
	w.stats.acked.Add(1)
	h.m.acked.Add(1)
}

func (w *Worker) requeue(h *handler, d *amqp.Delivery) {
	if err := d.Nack(false, true); err != nil {
		w.log.Debug("requeue failed; the broker requeues on channel close", "err", err)
		return
	}
	w.stats.requeued.Add(1)
	h.m.requeued.Add(1)
}
