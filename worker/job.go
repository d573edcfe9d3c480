package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"golang.org/x/time/rate"
)

// Message headers set by the runtime. Other headers a publisher sets are preserved on
// retry and dead-letter copies.
const (
	// HeaderTID carries the transaction ID (string).
	HeaderTID = "x-tid"
	// HeaderAttempt is which attempt this delivery is (int32, 1-based; absent means 1).
	HeaderAttempt = "x-attempt"
	// HeaderFirstPublished is when the job was first published (int64 Unix milliseconds).
	HeaderFirstPublished = "x-first-published"
	// HeaderError is the last error of a dead-lettered job (string).
	HeaderError = "x-error"
	// HeaderAttempts is how many attempts a dead-lettered job had (int32).
	HeaderAttempts = "x-attempts"
	// HeaderDiedAt is when the job was dead-lettered (int64 Unix milliseconds).
	HeaderDiedAt = "x-died-at"
	// HeaderOriginalQueue is the queue a dead-lettered job came from (string).
	HeaderOriginalQueue = "x-original-queue"
	// HeaderReplays is how many times a job was replayed from its dead queue (int32).
	HeaderReplays = "x-replays"
	// HeaderTraceParent and HeaderTraceState are the W3C Trace Context headers,
	// carried beside the TID (strings).
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// maxErrorHeader bounds the x-error header so a huge error cannot bloat the dead queue.
const maxErrorHeader = 1024

// Job is one delivery of a task or event as seen by a handler. Handlers must not
// modify it: after a timeout the runtime may still read it while an abandoned handler
// runs.
type Job struct {
	// ID is the AMQP message ID, stable across retries.
	ID string
	// TID is the transaction ID; publishes made with the handler's context carry it.
	TID string
	// Name is the task or event name.
	Name string
	// Body is the payload.
	Body []byte
	// Attempt is which attempt this is, 1-based.
	Attempt int
	// Headers are the message headers as delivered.
	Headers amqp.Table
	// FirstPublished is when the job was first published (zero if unknown).
	FirstPublished time.Time
	// Redelivered is set when the broker redelivers after a lost channel or a crash, so
	// an earlier delivery of this attempt may have run.
	Redelivered bool
	// Queue is the queue the job was consumed from.
	Queue string
	// TraceParent is the W3C traceparent header the job carries ("" if none); a
	// publish with the handler's context carries it on (see WithTraceParent).
	TraceParent string

	w   *Worker
	ctx jobContext // the handler's context before any timeout
}

// next is the job of the next in-process attempt: a copy, because an abandoned
// handler may still read the previous one.
func (j *Job) next() *Job {
	n := *j
	n.Attempt++
	n.ctx = jobContext{Context: j.ctx.Context, job: &n}
	return &n
}

// HandlerFunc handles one attempt of a job. nil acks it; an error retries it with
// backoff (see Permanent, RetryAfter and Malformed for the other outcomes).
type HandlerFunc func(ctx context.Context, job *Job) error

// RecoveryFunc runs once a job has failed for good (attempts exhausted or a permanent
// error), before the job is dead-lettered. Its error or panic is logged; the job is
// dead-lettered either way.
type RecoveryFunc func(ctx context.Context, job *Job, err error) error

// JSON adapts a handler of typed payloads: the body is decoded into a T, and a body
// that does not decode is dead-lettered at once (Malformed).
func JSON[T any](fn func(ctx context.Context, job *Job, payload T) error) HandlerFunc {
	return func(ctx context.Context, job *Job) error {
		var v T
		if err := json.Unmarshal(job.Body, &v); err != nil {
			return Malformed(fmt.Errorf("decode %T: %w", v, err))
		}
		return fn(ctx, job, v)
	}
}

// handler is one registered task or event with its settings resolved: the worker's,
// overridden by its HandlerOptions.
type handler struct {
	name        string // task or event
	queue       string
	event       bool
	fn          HandlerFunc // as registered
	call        HandlerFunc // fn inside the middleware; set by Run
	middleware  []Middleware
	recovery    RecoveryFunc
	retry       RetryPolicy
	timeout     time.Duration
	concurrency int
	limiter     *rate.Limiter // nil: no rate limit
	tiers       []time.Duration
	m           *handlerMetrics
}

func jobFrom(w *Worker, h *handler, d *amqp.Delivery) *Job {
	j := &Job{
		ID:          d.MessageId,
		Name:        h.name,
		Body:        d.Body,
		Attempt:     1,
		Headers:     d.Headers,
		Redelivered: d.Redelivered,
		Queue:       h.queue,
		w:           w,
	}
	j.ctx = jobContext{Context: w.hardCtx, job: j}
	if d.Headers != nil {
		if tid, ok := d.Headers[HeaderTID].(string); ok {
			j.TID = tid
		}
		if n, ok := intHeader(d.Headers[HeaderAttempt]); ok && n > 0 {
			j.Attempt = int(n)
		}
		if ms, ok := intHeader(d.Headers[HeaderFirstPublished]); ok {
			j.FirstPublished = time.UnixMilli(ms)
		}
		if tp, ok := d.Headers[HeaderTraceParent].(string); ok {
			j.TraceParent = tp
		}
	}
	if j.FirstPublished.IsZero() && !d.Timestamp.IsZero() {
		j.FirstPublished = d.Timestamp
	}
	if j.TID == "" {
		// A job published without a TID starts a transaction here.
		j.TID = newID()
	}
	return j
}

// HeaderInt reads an integer header of a job (such as HeaderAttempt) whatever
// integer width the publisher chose.
func (j *Job) HeaderInt(key string) (int64, bool) { return intHeader(j.Headers[key]) }

// HeaderInt reads an integer header of a message whatever integer width the
// publisher chose.
func HeaderInt(h amqp.Table, key string) (int64, bool) { return intHeader(h[key]) }

// intHeader reads an integer header whatever width the publisher chose.
func intHeader(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	}
	return 0, false
}
