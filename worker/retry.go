package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// retry publishes a delayed copy (attempt+1) to the retry tier of delay and acks the
// original only once the copy is confirmed in that queue: a crash in between leaves
// both, never neither, and the attempt count travels in the message, not in the
// process. A tier that was deleted is declared again; when the copy cannot be stored
// the original is requeued (the attempt runs again rather than the job being lost).
func (w *Worker) retry(s *session, h *handler, job *Job, d *amqp.Delivery, delay time.Duration) {
	tier := toTier(delay)
	msg := copyMessage(d, job, 3)
	msg.Headers[HeaderAttempt] = int32(job.Attempt + 1)
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.PublishTimeout)
	defer cancel()
	err := s.pub.publishQueue(ctx, retryQueue(h.queue, tier), msg, func(ch *amqp.Channel) error {
		return w.topo.declareTier(ch, h.queue, tier)
	})
	if err != nil {
		w.log.Error("publish retry failed; requeueing the job", "tid", job.TID, "job", job.Name, "id", job.ID, "queue", retryQueue(h.queue, tier), "err", err)
		if f := asFatal("declare retry queue", err); f != nil {
			w.fail(f)
		}
		w.requeue(h, d)
		return
	}
	// The confirmed copy is the retry, whatever happens to the ack.
	w.stats.retried.Add(1)
	h.m.retried.Add(1)
	if w.afterRetryPublish != nil {
		w.afterRetryPublish(job)
	}
	if err := d.Ack(false); err != nil {
		w.log.Warn("ack after retry publish failed; the job will also be redelivered", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
	}
}

// recover runs the handler's recovery function under the handler's timeout; its
// failure or panic is logged only, since the job is dead-lettered either way.
func (w *Worker) recover(h *handler, job *Job, cause error) {
	if h.recovery == nil {
		return
	}
	w.stats.recovered.Add(1)
	h.m.recovered.Add(1)
	run := func(ctx context.Context) error { return h.recovery(ctx, job, cause) }
	var err error
	if h.timeout > 0 {
		err = w.bounded(h.timeout, job, "recovery function", nil, run)
	} else {
		err = w.protect(job, "recovery function", func() error { return run(&job.ctx) })
	}
	if err != nil {
		w.log.Error("recovery function failed", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
	}
}

// Dead-letter publishes that fail are retried with this backoff while the job is held.
const (
	deadRetryMin = 100 * time.Millisecond
	deadRetryMax = 5 * time.Second
)

// deadLetter publishes the job to its dead queue with the failure's headers and acks
// the original once the copy is confirmed. The recovery function has run by now and
// must not run again, so a failed publish is not answered with a requeue: it is
// retried, holding the job, until it succeeds or the session ends; then the job is
// remembered so that its redelivery to this process goes straight to the dead queue.
func (w *Worker) deadLetter(s *session, h *handler, job *Job, d *amqp.Delivery, cause error) {
	msg := copyMessage(d, job, 5)
	msg.Headers[HeaderError] = truncate(cause.Error(), maxErrorHeader)
	msg.Headers[HeaderAttempts] = int32(job.Attempt)
	msg.Headers[HeaderDiedAt] = w.now().UnixMilli()
	msg.Headers[HeaderOriginalQueue] = h.queue
	dead := DeadQueue(h.queue)
	declare := func(ch *amqp.Channel) error { return declareQueue(ch, dead, w.topo.deadQueueArgs()) }
	for wait := deadRetryMin; ; wait = min(2*wait, deadRetryMax) {
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.PublishTimeout)
		err := s.pub.publishQueue(ctx, dead, msg, declare)
		cancel()
		if err == nil {
			break
		}
		w.log.Error("publish to dead queue failed; holding the job and trying again", "tid", job.TID, "job", job.Name, "id", job.ID, "queue", dead, "in", wait, "err", err)
		if f := asFatal("declare dead queue", err); f != nil {
			w.fail(f)
		}
		select {
		case <-time.After(wait):
			continue
		case <-s.dead:
		case <-w.hardCtx.Done():
		}
		// The broker requeues the job when the session closes.
		w.dead.put(h.queue, job.ID, cause)
		return
	}
	w.stats.deadLettered.Add(1)
	h.m.deadLettered.Add(1)
	if err := d.Ack(false); err != nil {
		w.log.Warn("ack after dead-lettering failed; the job will also be redelivered", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
	}
}

// deadPending remembers, by queue and message ID, jobs that were recovered but not yet
// dead-lettered. It is bounded: past maxDeadPending entries the oldest are forgotten
// (their redelivery would then run again, as after a crash).
type deadPending struct {
	n     atomic.Int32 // len(m), read without the lock on every delivery
	mu    sync.Mutex
	m     map[string]error
	order []string
}

const maxDeadPending = 10000

func (p *deadPending) put(queue, id string, cause error) {
	if id == "" {
		return // nothing to know the redelivery by
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]error{}
	}
	k := queue + "\x00" + id
	if _, ok := p.m[k]; !ok {
		p.order = append(p.order, k)
	}
	p.m[k] = cause
	for len(p.order) > maxDeadPending {
		delete(p.m, p.order[0])
		p.order = p.order[1:]
	}
	p.n.Store(int32(len(p.m)))
}

// take returns and forgets the cause of a pending job.
func (p *deadPending) take(queue, id string) (error, bool) {
	if p.n.Load() == 0 || id == "" {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := queue + "\x00" + id
	cause, ok := p.m[k]
	if ok {
		delete(p.m, k)
		for i, o := range p.order {
			if o == k {
				p.order = append(p.order[:i], p.order[i+1:]...)
				break
			}
		}
		p.n.Store(int32(len(p.m)))
	}
	return cause, ok
}

// copyMessage copies a delivery for republishing: every publisher header survives
// except the broker's own dead-lettering history, which would grow on every tier hop.
func copyMessage(d *amqp.Delivery, job *Job, extra int) amqp.Publishing {
	h := make(amqp.Table, len(d.Headers)+extra)
	for k, v := range d.Headers {
		if isDeathHeader(k) {
			continue
		}
		h[k] = v
	}
	h[HeaderTID] = job.TID
	if _, ok := h[HeaderFirstPublished]; !ok && !job.FirstPublished.IsZero() {
		h[HeaderFirstPublished] = job.FirstPublished.UnixMilli()
	}
	return republish(d, h)
}

// republish is the delivery as a persistent message again, with headers h:
// a retry, a dead letter or a replay keeps every property of the original.
func republish(d *amqp.Delivery, h amqp.Table) amqp.Publishing {
	return amqp.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// isDeathHeader reports the broker's dead-lettering headers (and quorum queues'
// delivery count), which a republished copy must not carry.
func isDeathHeader(k string) bool {
	return k == "x-death" || k == "x-delivery-count" || strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... (%d bytes)", len(s))
}
