package worker

import (
	"context"
	"errors"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// loop is one of a consumer's Concurrency goroutines. Goroutines live as long as the
// consumer, not per message, and each acks from where it handled the job.
func (w *Worker) loop(s *session, h *handler, deliveries <-chan amqp.Delivery) {
	defer w.poolWG.Done()
	for {
		if w.limiter != nil && !w.intakeOff.Load() {
			// The token is taken before the delivery is received, so a prefetched
			// message waits in the buffer, not in a started handler.
			_ = w.limiter.Wait(w.stopCtx)
		}
		d, ok := <-deliveries
		if !ok {
			return
		}
		if w.intakeOff.Load() {
			w.requeue(&d)
			continue
		}
		w.handle(s, h, &d)
	}
}

// handle runs a delivery to its outcome: ack, retry, dead-letter or requeue.
func (w *Worker) handle(s *session, h *handler, d *amqp.Delivery) {
	w.stats.inFlight.Add(1)
	defer w.stats.inFlight.Add(-1)
	job := jobFrom(w, h, d)
	for {
		var done func(error)
		if cb := w.breaker(); cb != nil {
			var err error
			if done, err = cb.Allow(); err != nil {
				// The open breaker fails the job without charging an attempt.
				w.requeue(d)
				return
			}
		}
		err := w.attempt(h, job)
		if err != nil && w.hardCtx.Err() != nil {
			// Shutdown cancelled the attempt: not the job's fault.
			if done != nil {
				done(errExcluded)
			}
			w.requeue(d)
			return
		}
		if done != nil {
			done(breakerOutcome(err))
		}
		if err == nil {
			w.ack(job, d)
			return
		}
		w.stats.failed.Add(1)
		var malformed *malformedError
		switch {
		case errors.As(err, &malformed):
			w.log.Warn("malformed payload; dead-lettering", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
			w.deadLetter(s, h, job, d, err)
			return
		case IsPermanent(err) || job.Attempt >= w.cfg.Retry.MaxAttempts:
			w.log.Warn("job failed for good", "tid", job.TID, "job", job.Name, "id", job.ID, "attempt", job.Attempt, "err", err)
			w.recover(h, job, err)
			w.deadLetter(s, h, job, d, err)
			return
		}
		delay := w.retryDelay(job.Attempt, err)
		w.log.Debug("attempt failed; retrying", "tid", job.TID, "job", job.Name, "id", job.ID, "attempt", job.Attempt, "in", delay, "err", err)
		if w.cfg.Retry.Mode == RetryBroker {
			w.retry(s, h, job, d, delay)
			return
		}
		if !sleepCtx(w.hardCtx, delay) {
			w.requeue(d)
			return
		}
		w.stats.retried.Add(1)
		job.Attempt++
	}
}

// attempt runs the handler once with a fresh deadline; a panic is a failure.
func (w *Worker) attempt(h *handler, job *Job) (err error) {
	w.stats.started.Add(1)
	var ctx context.Context = &job.ctx
	if w.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.cfg.Timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
			w.log.Error("handler panicked", "tid", job.TID, "job", job.Name, "id", job.ID, "panic", r, "stack", string(err.(*panicError).stack))
		}
	}()
	return h.fn(ctx, job)
}

// breakerOutcome maps a handler result to what the breaker counts: bad payloads say
// nothing about the health of the handler's dependencies.
func breakerOutcome(err error) error {
	var m *malformedError
	if errors.As(err, &m) {
		return errExcluded
	}
	return err
}

func (w *Worker) retryDelay(attempt int, err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		// Never above MaxDelay, as with the policy's own delays.
		if limit := w.cfg.Retry.MaxDelay; limit > 0 && ra.after > limit {
			return limit
		}
		return max(ra.after, 0)
	}
	return w.cfg.Retry.delay(attempt, w.rnd)
}

func (w *Worker) ack(job *Job, d *amqp.Delivery) {
	if err := d.Ack(false); err != nil {
		// The channel is gone: the broker redelivers the job (at-least-once).
		w.log.Warn("ack failed; the job will be redelivered", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
		return
	}
	w.stats.acked.Add(1)
}

func (w *Worker) requeue(d *amqp.Delivery) {
	if err := d.Nack(false, true); err != nil {
		w.log.Debug("requeue failed; the broker requeues on channel close", "err", err)
		return
	}
	w.stats.requeued.Add(1)
}
