package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RetryMode selects where a delayed retry waits.
type RetryMode string

const (
	// RetryBroker (the default) publishes a delayed copy to a TTL retry-tier queue that
	// dead-letters back into the job's own queue; the worker holds nothing while it waits.
	RetryBroker RetryMode = "broker"
	// RetryInProcess sleeps while holding the message (prefetch slot and goroutine) and
	// retries in the same process. The attempt count does not survive a crash.
	RetryInProcess RetryMode = "inprocess"
)

// Queue types for Config.QueueType.
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// Failover orders for Config.Failover.
const (
	// FailoverInOrder tries the URLs in the order given, the first one first, at every
	// (re)connect.
	FailoverInOrder = "in-order"
	// FailoverRandom tries the URLs in a new random order at every (re)connect, which
	// spreads a fleet's connections over a cluster's nodes.
	FailoverRandom = "random"
)

// RetryPolicy is the per-job retry schedule. The delay after attempt n is
// MinDelay·2^(n-1), capped at MaxDelay.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts including the first; 0 means 5.
	// 1 disables retries.
	MaxAttempts int `json:"max_attempts"`
	// MinDelay is the delay after the first failed attempt; 0 means 100ms. At least 1ms
	// (tier queues have millisecond TTLs).
	MinDelay time.Duration `json:"min_delay"`
	// MaxDelay caps the delay; 0 means unbounded (the delay still stops growing at the
	// last attempt, so the set of tier queues stays bounded by MaxAttempts). No delay
	// may exceed the broker's longest TTL, 10 years.
	MaxDelay time.Duration `json:"max_delay"`
	// Jitter draws each delay from [d/2, d] instead of d, rounded down to one of the
	// tier delays d·2^(-k/4) (see the package documentation); never above d.
	Jitter bool `json:"jitter"`
	// Mode is where the delay is spent; "" means RetryBroker.
	Mode RetryMode `json:"mode"`
}

// BreakerConfig configures the per-worker circuit breaker.
type BreakerConfig struct {
	// Enabled turns the breaker on; the zero value has no breaker.
	Enabled bool `json:"enabled"`
	// FailureRatio of failed attempts in the window that trips the breaker; 0 means 0.5.
	FailureRatio float64 `json:"failure_ratio"`
	// MinRequests is how many attempts the window needs before it may trip; 0 means 20.
	MinRequests int `json:"min_requests"`
	// OpenFor is how long the breaker stays open before probing; 0 means 5s.
	OpenFor time.Duration `json:"open_for"`
	// Window is the closed-state counting interval after which counts reset; 0 means 10s.
	Window time.Duration `json:"window"`
	// HealthCheck, if set, is the probe after OpenFor instead of a single job; the
	// worker resumes consuming when it returns nil.
	HealthCheck func(ctx context.Context) error `json:"-"`
	// IsFailure, if set, reports whether a failed attempt's error says that the
	// dependency is sick and counts against the breaker; other errors count as
	// successes. nil means every retriable error (including timeouts and panics)
	// counts, and Permanent and Malformed errors do not.
	IsFailure func(err error) bool `json:"-"`
}

// Config configures a Worker. Zero values are the documented defaults.
type Config struct {
	// URL is the AMQP URL of the broker. URL or URLs is required.
	URL string
	// URLs are more brokers, e.g. the other nodes of a cluster: the worker connects to
	// the first of URL and URLs that answers, in the order Failover says, at every
	// (re)connect.
	URLs []string
	// Failover is FailoverInOrder ("" means it) or FailoverRandom.
	Failover string
	// App is this service's app name, the first segment of its tasks (required).
	App string
	// Prefetch is basic.qos per consumer channel; 0 means unlimited and is logged as a
	// warning because the broker then pushes the whole queue into the process.
	Prefetch int
	// Concurrency is the number of handler goroutines per registered task or event;
	// 0 means 1. WithConcurrency overrides it per handler.
	Concurrency int
	// Timeout bounds each attempt; 0 means none. At the deadline the attempt fails
	// (retriable) and its slot is freed even if the handler ignores its context.
	// WithTimeout overrides it per handler.
	Timeout time.Duration
	// RateLimit is the number of jobs per second the worker starts (token bucket, taken
	// once a delivery is in hand); 0 means unlimited. WithRateLimit gives a handler a
	// bucket of its own instead.
	RateLimit float64
	// Burst is the token bucket size; 0 means 1.
	Burst int
	// Retry is the retry policy of every handler; WithRetry overrides it per handler.
	Retry RetryPolicy
	// Breaker is the circuit breaker; disabled by default.
	Breaker BreakerConfig
	// QueueType of every queue the worker declares (job, retry-tier and dead queues):
	// QueueClassic ("" means classic) or QueueQuorum.
	QueueType string
	// DeliveryLimit is, for quorum job queues, how many deliveries of one message the
	// broker allows before it dead-letters the message to its dead queue: the backstop
	// against a message that crashes every worker that takes it. Requeues (breaker,
	// shutdown) and lost channels count as deliveries. 0 means 20; -1 means no limit.
	// It is part of the queue's arguments: every declarer must agree on it.
	DeliveryLimit int
	// ShutdownTimeout is how long Run waits for in-flight jobs after its context is
	// cancelled before it cancels their contexts and requeues them; 0 means 10s.
	ShutdownTimeout time.Duration
	// PublishTimeout bounds the wait for a publisher confirm when the caller's context
	// has no deadline; 0 means 10s.
	PublishTimeout time.Duration
	// ConsumerCheck is how often a consumer that received nothing since the last check
	// and has nothing in flight makes sure the broker still delivers to it: its queue
	// must exist, and hold no ready jobs it is not given. A broker may drop a consumer
	// without basic.cancel (a quorum queue deleted on a cluster, a classic queue whose
	// process crashed); the worker then declares the queue again and consumes again.
	// 0 means 5s; a negative value turns the check off.
	ConsumerCheck time.Duration
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
	// Dial opens the AMQP connection to one URL; nil means amqp.DialConfig with a 10s
	// heartbeat.
	Dial func(url string) (*amqp.Connection, error)
	// OnBreakerChange, if set, is called on every breaker transition with the state
	// names ("closed", "half-open", "open"), in order, from a goroutine of the worker's
	// (it may call Stats; while it blocks, later transitions wait for it).
	OnBreakerChange func(from, to string)
}

const (
	defaultMaxAttempts     = 5
	defaultMinDelay        = 100 * time.Millisecond
	defaultShutdownTimeout = 10 * time.Second
	defaultPublishTimeout  = 10 * time.Second
	defaultConsumerCheck   = 5 * time.Second
	defaultFailureRatio    = 0.5
	defaultMinRequests     = 20
	defaultOpenFor         = 5 * time.Second
	defaultWindow          = 10 * time.Second
	defaultDeliveryLimit   = 20

	// maxTTL is the longest x-message-ttl RabbitMQ accepts (10 years, in ms).
	maxTTL = 315360000000 * time.Millisecond
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = defaultMaxAttempts
	}
	if p.MinDelay == 0 {
		p.MinDelay = defaultMinDelay
	}
	if p.Mode == "" {
		p.Mode = RetryBroker
	}
	return p
}

// Validate reports every problem with p, after its zero-value defaults: the
// checks New makes of Config.Retry.
func (p RetryPolicy) Validate() error { return p.withDefaults().validate() }

func (p RetryPolicy) validate() error {
	var errs []error
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("retry max attempts %d: must not be negative", p.MaxAttempts))
	}
	if p.MinDelay < time.Millisecond {
		errs = append(errs, fmt.Errorf("retry min delay %v: must be at least 1ms", p.MinDelay))
	}
	if p.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("retry max delay %v: must not be negative", p.MaxDelay))
	}
	if p.MaxDelay > 0 && p.MaxDelay < p.MinDelay {
		errs = append(errs, fmt.Errorf("retry max delay %v: must not be below min delay %v", p.MaxDelay, p.MinDelay))
	}
	if p.MaxDelay > maxTTL {
		errs = append(errs, fmt.Errorf("retry max delay %v: above the broker's longest TTL (%v)", p.MaxDelay, maxTTL))
	}
	if p.Mode != RetryBroker && p.Mode != RetryInProcess {
		errs = append(errs, fmt.Errorf("retry mode %q: want %q or %q", p.Mode, RetryBroker, RetryInProcess))
	}
	if len(errs) == 0 && p.Mode == RetryBroker && p.MaxAttempts > 1 {
		if d := p.baseDelay(p.MaxAttempts - 1); d > maxTTL {
			errs = append(errs, fmt.Errorf("retry delay after attempt %d is %v: above the broker's longest TTL (%v); set max delay", p.MaxAttempts-1, d, maxTTL))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.Burst == 0 {
		c.Burst = 1
	}
	if c.QueueType == "" {
		c.QueueType = QueueClassic
	}
	if c.DeliveryLimit == 0 {
		c.DeliveryLimit = defaultDeliveryLimit
	}
	if c.Failover == "" {
		c.Failover = FailoverInOrder
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = defaultShutdownTimeout
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = defaultPublishTimeout
	}
	if c.ConsumerCheck == 0 {
		c.ConsumerCheck = defaultConsumerCheck
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Retry = c.Retry.withDefaults()
	b := &c.Breaker
	if b.FailureRatio == 0 {
		b.FailureRatio = defaultFailureRatio
	}
	if b.MinRequests == 0 {
		b.MinRequests = defaultMinRequests
	}
	if b.OpenFor == 0 {
		b.OpenFor = defaultOpenFor
	}
	if b.Window == 0 {
		b.Window = defaultWindow
	}
}

func (c *Config) validate() error {
	var errs []error
	errs = append(errs, validateURLs(c.URL, c.URLs, c.Failover))
	if c.App == "" {
		errs = append(errs, errors.New("app: required"))
	} else if err := ValidateApp(c.App); err != nil {
		errs = append(errs, err)
	}
	if c.Prefetch < 0 {
		errs = append(errs, fmt.Errorf("prefetch %d: must not be negative", c.Prefetch))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d: must not be negative", c.Concurrency))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must not be negative", c.Timeout))
	}
	if c.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("rate limit %v: must not be negative", c.RateLimit))
	}
	if c.Burst < 0 {
		errs = append(errs, fmt.Errorf("burst %d: must not be negative", c.Burst))
	}
	errs = append(errs, validateQueueType(c.QueueType, c.DeliveryLimit))
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout %v: must not be negative", c.ShutdownTimeout))
	}
	if c.PublishTimeout < 0 {
		errs = append(errs, fmt.Errorf("publish timeout %v: must not be negative", c.PublishTimeout))
	}
	errs = append(errs, c.Retry.validate())
	if b := c.Breaker; b.Enabled {
		if b.FailureRatio <= 0 || b.FailureRatio > 1 {
			errs = append(errs, fmt.Errorf("breaker failure ratio %v: want (0, 1]", b.FailureRatio))
		}
		if b.MinRequests < 0 {
			errs = append(errs, fmt.Errorf("breaker min requests %d: must not be negative", b.MinRequests))
		}
		if b.OpenFor < 0 {
			errs = append(errs, fmt.Errorf("breaker open for %v: must not be negative", b.OpenFor))
		}
		if b.Window < 0 {
			errs = append(errs, fmt.Errorf("breaker window %v: must not be negative", b.Window))
		}
	}
	return errors.Join(errs...)
}

func validateURLs(url string, urls []string, failover string) error {
	var errs []error
	if url == "" && len(urls) == 0 {
		errs = append(errs, errors.New("url: required"))
	}
	for i, u := range urls {
		if u == "" {
			errs = append(errs, fmt.Errorf("urls[%d]: empty", i))
		}
	}
	if failover != FailoverInOrder && failover != FailoverRandom {
		errs = append(errs, fmt.Errorf("failover %q: want %q or %q", failover, FailoverInOrder, FailoverRandom))
	}
	return errors.Join(errs...)
}

func validateQueueType(queueType string, deliveryLimit int) error {
	var errs []error
	if queueType != QueueClassic && queueType != QueueQuorum {
		errs = append(errs, fmt.Errorf("queue type %q: want %q or %q", queueType, QueueClassic, QueueQuorum))
	}
	if deliveryLimit < -1 {
		errs = append(errs, fmt.Errorf("delivery limit %d: want -1 (none) or more", deliveryLimit))
	}
	return errors.Join(errs...)
}
