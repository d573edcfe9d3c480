package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// PublishOption configures one publish.
type PublishOption func(*publishOptions)

type publishOptions struct {
	id          string
	contentType string
	headers     amqp.Table
}

// WithMessageID sets the message ID (the job ID); by default a new UUIDv7.
func WithMessageID(id string) PublishOption {
	return func(o *publishOptions) { o.id = id }
}

// WithContentType sets the content type; by default none.
func WithContentType(ct string) PublishOption {
	return func(o *publishOptions) { o.contentType = ct }
}

// WithHeader adds a message header. Headers named like the runtime's (HeaderTID, ...)
// override what the runtime would set.
func WithHeader(key string, value any) PublishOption {
	return func(o *publishOptions) {
		if o.headers == nil {
			o.headers = amqp.Table{}
		}
		o.headers[key] = value
	}
}

// newMessage builds a persistent message carrying the TID of ctx (or a new one).
func newMessage(ctx context.Context, body []byte, opts []PublishOption) amqp.Publishing {
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	now := time.Now()
	h := make(amqp.Table, len(o.headers)+2)
	for k, v := range o.headers {
		h[k] = v
	}
	if _, ok := h[HeaderTID]; !ok {
		tid := TIDFrom(ctx)
		if tid == "" {
			tid = newID()
		}
		h[HeaderTID] = tid
	}
	if _, ok := h[HeaderFirstPublished]; !ok {
		h[HeaderFirstPublished] = now.UnixMilli()
	}
	if o.id == "" {
		o.id = newID()
	}
	return amqp.Publishing{
		Headers:      h,
		ContentType:  o.contentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    o.id,
		Timestamp:    now,
		Body:         body,
	}
}

// confirmer is a channel in confirm mode plus the names already declared on its
// connection. Publishing on it is safe from many goroutines.
type confirmer struct {
	conn      *amqp.Connection
	ch        *amqp.Channel
	timeout   time.Duration
	queueType string

	mu       sync.Mutex
	declared map[string]bool
}

func newConfirmer(conn *amqp.Connection, timeout time.Duration, queueType string) (*confirmer, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open publish channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	return &confirmer{conn: conn, ch: ch, timeout: timeout, queueType: queueType, declared: map[string]bool{}}, nil
}

// markDeclared records names declared elsewhere (the worker's topology).
func (c *confirmer) markDeclared(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		c.declared[n] = true
	}
}

// ensureQueue makes sure a task queue exists before a publish through the default
// exchange, which the broker would otherwise drop silently. An existing queue is used
// as is (whatever its arguments); a missing one is declared with the configured type.
// A failed declare closes only a throwaway channel.
func (c *confirmer) ensureQueue(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.declared["q:"+name] {
		return nil
	}
	ch, err := c.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel to check queue %q: %w", name, err)
	}
	if _, err := ch.QueueDeclarePassive(name, true, false, false, false, nil); err == nil {
		_ = ch.Close()
		c.declared["q:"+name] = true
		return nil
	}
	// The failed passive declare closed ch.
	if ch, err = c.conn.Channel(); err != nil {
		return fmt.Errorf("open channel to declare queue %q: %w", name, err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(name, true, false, false, false, queueArgs(c.queueType)); err != nil {
		return fmt.Errorf("declare queue %q: %w", name, err)
	}
	c.declared["q:"+name] = true
	return nil
}

// ensureExchange declares an event's fanout exchange (idempotent).
func (c *confirmer) ensureExchange(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.declared["x:"+name] {
		return nil
	}
	ch, err := c.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel to declare exchange %q: %w", name, err)
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(name, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %q: %w", name, err)
	}
	c.declared["x:"+name] = true
	return nil
}

// publish sends msg and waits for the broker's confirm. A nack, a timeout or a channel
// lost before the confirm is an error: the message may not have been stored.
func (c *confirmer) publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, msg)
	if err != nil {
		return fmt.Errorf("publish to exchange %q key %q: %w", exchange, key, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("wait for confirm of publish to exchange %q key %q: %w", exchange, key, err)
	}
	if !ok {
		if c.ch.IsClosed() {
			return fmt.Errorf("publish to exchange %q key %q: channel closed before confirm: %w", exchange, key, ErrNacked)
		}
		return fmt.Errorf("publish to exchange %q key %q: %w", exchange, key, ErrNacked)
	}
	return nil
}

func (c *confirmer) publishTask(ctx context.Context, task string, body []byte, opts []PublishOption) error {
	if err := c.ensureQueue(TaskQueue(task)); err != nil {
		return err
	}
	return c.publish(ctx, "", TaskQueue(task), newMessage(ctx, body, opts))
}

func (c *confirmer) publishEvent(ctx context.Context, event string, body []byte, opts []PublishOption) error {
	if err := c.ensureExchange(event); err != nil {
		return err
	}
	return c.publish(ctx, event, "", newMessage(ctx, body, opts))
}

// PublisherConfig configures a standalone Publisher.
type PublisherConfig struct {
	// URL is the AMQP URL of the broker (required).
	URL string
	// App is the publishing service's app name; it may only publish its own tasks
	// (required).
	App string
	// QueueType is used to declare a task queue that does not exist yet; "" means classic.
	QueueType string
	// PublishTimeout bounds the confirm wait when the context has no deadline; 0 means 10s.
	PublishTimeout time.Duration
	// Logger receives the publisher's logs; nil means slog.Default().
	Logger *slog.Logger
	// Dial opens the AMQP connection; nil means amqp.DialConfig with a 10s heartbeat.
	Dial func(url string) (*amqp.Connection, error)
}

// Publisher publishes tasks and events with publisher confirms, for services that
// publish without consuming. It connects on first use and reconnects on the next
// publish after a connection loss; a publish that failed is never retried silently.
// It is safe for concurrent use.
type Publisher struct {
	cfg PublisherConfig
	log *slog.Logger

	mu     sync.Mutex
	c      *confirmer
	closed bool
}

// NewPublisher validates cfg and returns a Publisher; it does not connect yet.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.QueueType == "" {
		cfg.QueueType = QueueClassic
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = defaultPublishTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var errs []error
	if cfg.URL == "" {
		errs = append(errs, errors.New("url: required"))
	}
	if err := ValidateApp(cfg.App); err != nil {
		errs = append(errs, err)
	}
	if cfg.QueueType != QueueClassic && cfg.QueueType != QueueQuorum {
		errs = append(errs, fmt.Errorf("queue type %q: want %q or %q", cfg.QueueType, QueueClassic, QueueQuorum))
	}
	if cfg.PublishTimeout < 0 {
		errs = append(errs, fmt.Errorf("publish timeout %v: must not be negative", cfg.PublishTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid publisher config: %w", err)
	}
	return &Publisher{cfg: cfg, log: cfg.Logger}, nil
}

func (p *Publisher) confirmer() (*confirmer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.c != nil && !p.c.ch.IsClosed() {
		return p.c, nil
	}
	if p.c != nil {
		_ = p.c.conn.Close()
		p.c = nil
	}
	conn, err := dial(p.cfg.Dial, p.cfg.URL, p.cfg.App+"-publisher")
	if err != nil {
		return nil, err
	}
	c, err := newConfirmer(conn, p.cfg.PublishTimeout, p.cfg.QueueType)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	p.c = c
	return c, nil
}

// PublishTask publishes a task owned by the publisher's app and waits for the confirm.
// The message carries the TID of ctx, or a new one.
func (p *Publisher) PublishTask(ctx context.Context, task string, body []byte, opts ...PublishOption) error {
	if err := ValidateTask(p.cfg.App, task); err != nil {
		return err
	}
	c, err := p.confirmer()
	if err != nil {
		return fmt.Errorf("publish task %q: %w", task, err)
	}
	if err := c.publishTask(ctx, task, body, opts); err != nil {
		p.dropAfter(c, err)
		return fmt.Errorf("publish task %q: %w", task, err)
	}
	return nil
}

// dropAfter forgets c after a failed publish unless the broker cleanly nacked on
// a live channel: the library may learn of a dead socket only after the next
// write, and the next publish must then reconnect rather than fail again.
func (p *Publisher) dropAfter(c *confirmer, err error) {
	if errors.Is(err, ErrNacked) && !c.ch.IsClosed() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c == c {
		_ = c.conn.Close()
		p.c = nil
	}
}

// PublishEvent publishes an event to its fanout exchange and waits for the confirm.
func (p *Publisher) PublishEvent(ctx context.Context, event string, body []byte, opts ...PublishOption) error {
	if err := ValidateEvent(event); err != nil {
		return err
	}
	c, err := p.confirmer()
	if err != nil {
		return fmt.Errorf("publish event %q: %w", event, err)
	}
	if err := c.publishEvent(ctx, event, body, opts); err != nil {
		p.dropAfter(c, err)
		return fmt.Errorf("publish event %q: %w", event, err)
	}
	return nil
}

// Close closes the connection; later publishes return ErrClosed.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.c == nil {
		return nil
	}
	err := p.c.conn.Close()
	p.c = nil
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("close publisher connection: %w", err)
	}
	return nil
}
