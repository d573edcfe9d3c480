package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// PublisherConfig configures a standalone Publisher.
type PublisherConfig struct {
	// URL is the AMQP URL of the broker; URL or URLs is required.
	URL string
	// URLs are more brokers (a cluster's nodes), tried as Config.URLs are.
	URLs []string
	// Failover is FailoverInOrder ("" means it) or FailoverRandom.
	Failover string
	// App is the publishing service's app name; it may only publish its own tasks
	// (required).
	App string
	// QueueType and DeliveryLimit are used to declare a task queue that does not exist
	// yet, and delay queues; as in Config, and they must match the workers' settings.
	QueueType     string
	DeliveryLimit int
	// PublishTimeout bounds the confirm wait when the context has no deadline; 0 means 10s.
	PublishTimeout time.Duration
	// Logger receives the publisher's logs; nil means slog.Default().
	Logger *slog.Logger
	// Dial opens the AMQP connection to one URL; nil means amqp.DialConfig with a 10s
	// heartbeat.
	Dial func(url string) (*amqp.Connection, error)
}

// Publisher publishes tasks and events with publisher confirms, for services that
// publish without consuming. It connects on first use and reconnects on the next
// publish after a connection loss; a publish that failed is never retried silently.
// It is safe for concurrent use.
type Publisher struct {
	cfg  PublisherConfig
	log  *slog.Logger
	urls []string

	mu     sync.Mutex
	c      *confirmer
	closed bool
}

// NewPublisher validates cfg and returns a Publisher; it does not connect yet. Its
// errors are *ConfigError.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.QueueType == "" {
		cfg.QueueType = QueueClassic
	}
	if cfg.DeliveryLimit == 0 {
		cfg.DeliveryLimit = defaultDeliveryLimit
	}
	if cfg.Failover == "" {
		cfg.Failover = FailoverInOrder
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = defaultPublishTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var errs []error
	errs = append(errs, validateURLs(cfg.URL, cfg.URLs, cfg.Failover))
	if err := ValidateApp(cfg.App); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, validateQueueType(cfg.QueueType, cfg.DeliveryLimit))
	if cfg.PublishTimeout < 0 {
		errs = append(errs, fmt.Errorf("publish timeout %v: must not be negative", cfg.PublishTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &ConfigError{Op: "invalid publisher config", Err: err}
	}
	return &Publisher{cfg: cfg, log: cfg.Logger, urls: urlList(cfg.URL, cfg.URLs)}, nil
}

func (p *Publisher) confirmer(ctx context.Context) (*confirmer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.c != nil && !p.c.ch.IsClosed() {
		return p.c, nil
	}
	p.dropLocked()
	conn, err := dialAny(ctx, p.cfg.Dial, p.urls, p.cfg.Failover, rand.Float64, p.cfg.App+"-publisher", p.log)
	if err != nil {
		return nil, err
	}
	c, err := newConfirmer(conn, p.cfg.PublishTimeout, topology{p.cfg.QueueType, p.cfg.DeliveryLimit})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	p.c = c
	return c, nil
}

func (p *Publisher) dropLocked() {
	if p.c == nil {
		return
	}
	_ = p.c.conn.Close()
	p.c.wait()
	p.c = nil
}

// PublishTask publishes a task owned by the publisher's app and waits for the confirm.
// The message carries the TID and trace context of ctx, or a new TID.
func (p *Publisher) PublishTask(ctx context.Context, task string, body []byte, opts ...PublishOption) error {
	if err := ValidateTask(p.cfg.App, task); err != nil {
		return err
	}
	c, err := p.confirmer(ctx)
	if err != nil {
		return fmt.Errorf("publish task %q: %w", task, err)
	}
	if err := c.publishTask(ctx, task, body, opts); err != nil {
		p.dropAfter(c, err)
		return fmt.Errorf("publish task %q: %w", task, err)
	}
	return nil
}

// dropAfter forgets c after a failed publish unless the broker cleanly refused or
// returned the message on a live channel: the library may learn of a dead socket only
// after the next write, and the next publish must then reconnect rather than fail
// again.
func (p *Publisher) dropAfter(c *confirmer, err error) {
	if (errors.Is(err, ErrNacked) || errors.Is(err, ErrUnroutable)) && !c.ch.IsClosed() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c == c {
		p.dropLocked()
	}
}

// PublishEvent publishes an event to its fanout exchange and waits for the confirm.
func (p *Publisher) PublishEvent(ctx context.Context, event string, body []byte, opts ...PublishOption) error {
	if err := ValidateEvent(event); err != nil {
		return err
	}
	c, err := p.confirmer(ctx)
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
	p.c.wait()
	p.c = nil
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("close publisher connection: %w", err)
	}
	return nil
}
