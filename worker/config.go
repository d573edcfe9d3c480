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
	// last attempt, so the set of tier queues stays bounded by MaxAttempts).
	MaxDelay time.Duration `json:"max_delay"`
	// Jitter draws each delay uniformly from [d/2, d] instead of d; never above d.
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
}

// Config configures a Worker. Zero values are the documented defaults.
type Config struct {
	// URL is the AMQP URL of the broker (required).
	URL string
	// App is this service's app name, the first segment of its tasks (required).
	App string
	// Prefetch is basic.qos per consumer channel; 0 means unlimited and is logged as a
	// warning because the broker then pushes the whole queue into the process.
	Prefetch int
	// Concurrency is the number of handler goroutines per registered task or event;
	// 0 means 1.
	Concurrency int
	// Timeout bounds each attempt with a fresh deadline; 0 means none. A timeout is a
	// retriable failure.
	Timeout time.Duration
	// RateLimit is the number of jobs per second the worker starts (token bucket, taken
	// before a delivery starts); 0 means unlimited.
	RateLimit float64
	// Burst is the token bucket size; 0 means 1.
	Burst int
	// Retry is the retry policy of every handler.
	Retry RetryPolicy
	// Breaker is the circuit breaker; disabled by default.
	Breaker BreakerConfig
	// QueueType of job queues: QueueClassic ("" means classic) or QueueQuorum. Dead and
	// retry-tier queues are always classic.
	QueueType string
	// ShutdownTimeout is how long Run waits for in-flight jobs after its context is
	// cancelled before it cancels their contexts and requeues them; 0 means 10s.
	ShutdownTimeout time.Duration
	// PublishTimeout bounds the wait for a publisher confirm when the caller's context
	// has no deadline; 0 means 10s.
	PublishTimeout time.Duration
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
	// Dial opens the AMQP connection; nil means amqp.DialConfig with a 10s heartbeat.
	Dial func(url string) (*amqp.Connection, error)
	// OnBreakerChange, if set, is called on every breaker transition with the state
	// names ("closed", "half-open", "open"). It runs inside the breaker and must not block.
	OnBreakerChange func(from, to string)
}

const (
	defaultMaxAttempts     = 5
	defaultMinDelay        = 100 * time.Millisecond
	defaultShutdownTimeout = 10 * time.Second
	defaultPublishTimeout  = 10 * time.Second
	defaultFailureRatio    = 0.5
	defaultMinRequests     = 20
	defaultOpenFor         = 5 * time.Second
	defaultWindow          = 10 * time.Second
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
	if p.Mode != RetryBroker && p.Mode != RetryInProcess {
		errs = append(errs, fmt.Errorf("retry mode %q: want %q or %q", p.Mode, RetryBroker, RetryInProcess))
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
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = defaultShutdownTimeout
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = defaultPublishTimeout
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
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	}
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
	if c.QueueType != QueueClassic && c.QueueType != QueueQuorum {
		errs = append(errs, fmt.Errorf("queue type %q: want %q or %q", c.QueueType, QueueClassic, QueueQuorum))
	}
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

// queueArgs are the declare arguments of job queues. Classic queues get none so that a
// queue declared without arguments by someone else stays equivalent.
func queueArgs(queueType string) amqp.Table {
	if queueType == QueueQuorum {
		return amqp.Table{"x-queue-type": QueueQuorum}
	}
	return nil
}
