package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DeadLetter is one message of a dead-letter queue.
type DeadLetter struct {
	// ID is the job's message ID and TID its transaction ID.
	ID, TID string
	// Queue is the job queue it died in.
	Queue string
	// Error is why it died: the last attempt's error, or the broker's reason when the
	// broker dead-lettered it (e.g. "delivery_limit" for a quorum queue's backstop).
	Error string
	// Attempts is how many attempts it had (0 if the broker dead-lettered it).
	Attempts int
	// DiedAt is when it was dead-lettered (zero if unknown).
	DiedAt time.Time
	// Replays is how many times it was replayed before.
	Replays int
	// Headers, ContentType and Body are the message as it sits in the dead queue.
	Headers     amqp.Table
	ContentType string
	Body        []byte
}

// DeadLetterConfig configures OpenDeadLetters.
type DeadLetterConfig struct {
	// URL, URLs and Failover are as in Config.
	URL      string
	URLs     []string
	Failover string
	// Queue is the job queue (a task, or an event queue "<app>.<event>") whose dead
	// letters to manage; its dead-letter queue's name is accepted too.
	Queue string
	// PublishTimeout bounds each replayed message's confirm; 0 means 10s.
	PublishTimeout time.Duration
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
	// Dial opens the AMQP connection; nil means amqp.DialConfig.
	Dial func(url string) (*amqp.Connection, error)
}

// DeadLetters manages the dead-letter queue of one job queue: look at its messages,
// replay them into the job queue, or purge them. It is for operators' tools (see
// `bench dlq`) and holds one connection; it is not safe for concurrent use.
type DeadLetters struct {
	queue, dead string
	conn        *amqp.Connection
	ch          *amqp.Channel // for get, ack and purge
	pub         *confirmer
}

// ErrNoDeadQueue is returned by OpenDeadLetters when the dead-letter queue does not
// exist.
var ErrNoDeadQueue = errors.New("no such dead-letter queue")

// OpenDeadLetters connects and checks that the dead-letter queue exists.
func OpenDeadLetters(ctx context.Context, cfg DeadLetterConfig) (*DeadLetters, error) {
	if cfg.Failover == "" {
		cfg.Failover = FailoverInOrder
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = defaultPublishTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	queue := strings.TrimSuffix(cfg.Queue, deadSuffix)
	var errs []error
	errs = append(errs, validateURLs(cfg.URL, cfg.URLs, cfg.Failover))
	if queue == "" {
		errs = append(errs, errors.New("queue: required"))
	} else if _, err := splitName(queue); err != nil {
		errs = append(errs, fmt.Errorf("queue %q: %w", cfg.Queue, err))
	}
	if cfg.PublishTimeout < 0 {
		errs = append(errs, fmt.Errorf("publish timeout %v: must not be negative", cfg.PublishTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &ConfigError{Op: "open dead letters", Err: err}
	}
	conn, err := dialAny(ctx, cfg.Dial, urlList(cfg.URL, cfg.URLs), cfg.Failover, rand.Float64, "dead-letters", cfg.Logger)
	if err != nil {
		return nil, err
	}
	q := &DeadLetters{queue: queue, dead: DeadQueue(queue), conn: conn}
	if err := q.open(cfg.PublishTimeout); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func (q *DeadLetters) open(timeout time.Duration) error {
	ch, err := q.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if _, err := ch.QueueDeclarePassive(q.dead, true, false, false, false, nil); err != nil {
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return fmt.Errorf("%w: %q", ErrNoDeadQueue, q.dead)
		}
		return fmt.Errorf("check queue %q: %w", q.dead, err)
	}
	q.ch = ch
	// Replays only publish into existing queues; nothing is declared.
	if q.pub, err = newConfirmer(q.conn, timeout, topology{}); err != nil {
		return err
	}
	return nil
}

// Queue is the job queue; DeadQueue(Queue()) holds the dead letters.
func (q *DeadLetters) Queue() string { return q.queue }

// Len returns how many dead letters are ready in the queue. Messages that Peek or
// Replay returned to the queue may take a moment to count again.
func (q *DeadLetters) Len(ctx context.Context) (int, error) {
	st, err := q.ch.QueueDeclarePassive(q.dead, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("inspect queue %q: %w", q.dead, err)
	}
	return st.Messages, ctx.Err()
}

// Peek returns up to n dead letters from the head of the queue and leaves them there:
// it takes them without acking and then returns them all to the queue.
func (q *DeadLetters) Peek(ctx context.Context, n int) ([]DeadLetter, error) {
	var out []DeadLetter
	var last uint64
	defer func() {
		if last != 0 {
			_ = q.ch.Nack(last, true, true)
		}
	}()
	for len(out) < n {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		d, ok, err := q.ch.Get(q.dead, false)
		if err != nil {
			return out, fmt.Errorf("get from %q: %w", q.dead, err)
		}
		if !ok {
			break
		}
		last = d.DeliveryTag
		out = append(out, q.deadLetter(&d))
	}
	return out, nil
}

// ReplayOptions selects what Replay moves.
type ReplayOptions struct {
	// Limit is how many dead letters to look at, from the head; 0 means as many as the
	// queue held when Replay began (so that jobs that die again meanwhile are not
	// replayed twice).
	Limit int
	// IDs, if set, replays only these message IDs; the others looked at stay.
	IDs []string
}

// Replay moves dead letters back into the job queue, as new jobs of the same ID and
// TID: the attempt count starts again at 1 and the dead-letter headers are dropped,
// HeaderReplays is incremented, other headers are kept. Each one is acked in the dead
// queue only after the broker confirmed it in the job queue. It returns how many were
// replayed.
func (q *DeadLetters) Replay(ctx context.Context, opts ReplayOptions) (int, error) {
	limit := opts.Limit
	if limit <= 0 {
		n, err := q.Len(ctx)
		if err != nil {
			return 0, err
		}
		limit = n
	}
	var kept uint64 // last delivery left in the queue, returned at the end
	defer func() {
		if kept != 0 {
			_ = q.ch.Nack(kept, true, true)
		}
	}()
	replayed := 0
	for range limit {
		if err := ctx.Err(); err != nil {
			return replayed, err
		}
		d, ok, err := q.ch.Get(q.dead, false)
		if err != nil {
			return replayed, fmt.Errorf("get from %q: %w", q.dead, err)
		}
		if !ok {
			break
		}
		if len(opts.IDs) > 0 && !slices.Contains(opts.IDs, d.MessageId) {
			kept = d.DeliveryTag
			continue
		}
		if err := q.pub.publishQueue(ctx, q.queue, replayMessage(&d), nil); err != nil {
			_ = d.Nack(false, true)
			return replayed, fmt.Errorf("replay %s into %q: %w", d.MessageId, q.queue, err)
		}
		if err := d.Ack(false); err != nil {
			return replayed, fmt.Errorf("ack %s in %q after replaying it (it is now in both queues): %w", d.MessageId, q.dead, err)
		}
		replayed++
	}
	return replayed, nil
}

// Purge deletes every dead letter in the queue and returns how many there were.
func (q *DeadLetters) Purge(ctx context.Context) (int, error) {
	n, err := q.ch.QueuePurge(q.dead, false)
	if err != nil {
		return 0, fmt.Errorf("purge %q: %w", q.dead, err)
	}
	return n, ctx.Err()
}

// Close closes the connection; dead letters taken by Peek or Replay and not acked are
// returned to the queue by the broker.
func (q *DeadLetters) Close() error {
	err := q.conn.Close()
	if q.pub != nil {
		q.pub.wait()
	}
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("close connection: %w", err)
	}
	return nil
}

func (q *DeadLetters) deadLetter(d *amqp.Delivery) DeadLetter {
	dl := DeadLetter{ID: d.MessageId, Queue: q.queue, Headers: d.Headers, ContentType: d.ContentType, Body: d.Body}
	dl.TID, _ = d.Headers[HeaderTID].(string)
	dl.Error, _ = d.Headers[HeaderError].(string)
	if n, ok := intHeader(d.Headers[HeaderAttempts]); ok {
		dl.Attempts = int(n)
	}
	if n, ok := intHeader(d.Headers[HeaderReplays]); ok {
		dl.Replays = int(n)
	}
	if ms, ok := intHeader(d.Headers[HeaderDiedAt]); ok {
		dl.DiedAt = time.UnixMilli(ms)
	}
	if dl.Error == "" {
		// Dead-lettered by the broker: its x-death record says why and when.
		if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
			if death, ok := deaths[0].(amqp.Table); ok {
				if r, ok := death["reason"].(string); ok {
					dl.Error = "dead-lettered by the broker: " + r
				}
				if t, ok := death["time"].(time.Time); ok && dl.DiedAt.IsZero() {
					dl.DiedAt = t
				}
			}
		}
	}
	return dl
}

// replayMessage is a dead letter as a new job: same ID, TID, body and publisher
// headers; no attempt count, dead-letter headers or broker death records.
func replayMessage(d *amqp.Delivery) amqp.Publishing {
	h := make(amqp.Table, len(d.Headers)+1)
	for k, v := range d.Headers {
		switch {
		case isDeathHeader(k), k == HeaderAttempt, k == HeaderError, k == HeaderAttempts, k == HeaderDiedAt, k == HeaderOriginalQueue:
			continue
		}
		h[k] = v
	}
	n, _ := intHeader(d.Headers[HeaderReplays])
	h[HeaderReplays] = int32(n + 1)
	return republish(d, h)
}
