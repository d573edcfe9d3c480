package worker

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// retry publishes a delayed copy (attempt+1) to a retry tier and acks the original only
// once the copy is confirmed: a crash in between leaves both, never neither, and the
// attempt count travels in the message, not in the process.
func (w *Worker) retry(s *session, h *handler, job *Job, d *amqp.Delivery, delay time.Duration) {
	t, expiration := pickTier(h.tiers, delay)
	msg := copyMessage(d, job, 3)
	msg.Headers[HeaderAttempt] = int32(job.Attempt + 1)
	msg.Expiration = expiration
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.PublishTimeout)
	defer cancel()
	if err := s.pub.publish(ctx, "", t.queue, msg); err != nil {
		// Without a confirmed copy the original must stay: requeue it (the attempt is
		// run again rather than lost).
		w.log.Warn("publish retry failed; requeueing", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
		w.requeue(d)
		return
	}
	// The confirmed copy is the retry, whatever happens to the ack.
	w.stats.retried.Add(1)
	if w.afterRetryPublish != nil {
		w.afterRetryPublish(job)
	}
	if err := d.Ack(false); err != nil {
		w.log.Warn("ack after retry publish failed; the job will also be redelivered", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
	}
}

// recover runs the handler's recovery function; its failure or panic is logged only,
// since the job is dead-lettered either way.
func (w *Worker) recover(h *handler, job *Job, cause error) {
	if h.recovery == nil {
		return
	}
	w.stats.recovered.Add(1)
	var ctx context.Context = &job.ctx
	if w.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.cfg.Timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("recovery function panicked", "tid", job.TID, "job", job.Name, "id", job.ID, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if err := h.recovery(ctx, job, cause); err != nil {
		w.log.Error("recovery function failed", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
	}
}

// deadLetter publishes the job to its dead queue with the failure's headers and acks
// the original once the copy is confirmed.
func (w *Worker) deadLetter(s *session, h *handler, job *Job, d *amqp.Delivery, cause error) {
	msg := copyMessage(d, job, 5)
	msg.Headers[HeaderError] = truncate(cause.Error(), maxErrorHeader)
	msg.Headers[HeaderAttempts] = int32(job.Attempt)
	msg.Headers[HeaderDiedAt] = w.now().UnixMilli()
	msg.Headers[HeaderOriginalQueue] = h.queue
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.PublishTimeout)
	defer cancel()
	dead := DeadQueue(h.queue)
	if err := s.pub.publish(ctx, "", dead, msg); err != nil {
		w.log.Error("publish to dead queue failed; requeueing", "tid", job.TID, "job", job.Name, "id", job.ID, "queue", dead, "err", err)
		w.requeue(d)
		return
	}
	w.stats.deadLettered.Add(1)
	if err := d.Ack(false); err != nil {
		w.log.Warn("ack after dead-lettering failed; the job will also be redelivered", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
	}
}

// copyMessage copies a delivery for republishing: every publisher header survives
// except the broker's own dead-lettering history, which would grow on every tier hop.
func copyMessage(d *amqp.Delivery, job *Job, extra int) amqp.Publishing {
	h := make(amqp.Table, len(d.Headers)+extra)
	for k, v := range d.Headers {
		if k == "x-death" || strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-") {
			continue
		}
		h[k] = v
	}
	h[HeaderTID] = job.TID
	if _, ok := h[HeaderFirstPublished]; !ok && !job.FirstPublished.IsZero() {
		h[HeaderFirstPublished] = job.FirstPublished.UnixMilli()
	}
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... (%d bytes)", len(s))
}
