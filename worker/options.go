package worker

import (
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// HandlerOption configures one registered handler. Options that set what Config also
// sets (retry policy, timeout, concurrency, rate limit) override the worker's value
// for this handler only.
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	recovery    RecoveryFunc
	retry       *RetryPolicy
	timeout     *time.Duration
	concurrency *int
	rate        *float64
	burst       int
	middleware  []Middleware
}

// WithRecovery sets the recovery function of a handler.
func WithRecovery(fn RecoveryFunc) HandlerOption {
	return func(o *handlerOptions) { o.recovery = fn }
}

// WithRetry gives a handler its own retry policy instead of Config.Retry. Its zero
// fields take RetryPolicy's documented defaults, not the worker's values.
func WithRetry(p RetryPolicy) HandlerOption {
	return func(o *handlerOptions) { o.retry = &p }
}

// WithTimeout gives a handler its own per-attempt timeout instead of Config.Timeout;
// 0 means none.
func WithTimeout(d time.Duration) HandlerOption {
	return func(o *handlerOptions) { o.timeout = &d }
}

// WithConcurrency gives a handler its own number of goroutines instead of
// Config.Concurrency; 0 means 1.
func WithConcurrency(n int) HandlerOption {
	return func(o *handlerOptions) { o.concurrency = &n }
}

// WithRateLimit gives a handler a token bucket of its own (perSecond jobs started per
// second, burst tokens; burst 0 means 1) instead of the worker's shared one;
// perSecond 0 means this handler is not rate limited.
func WithRateLimit(perSecond float64, burst int) HandlerOption {
	return func(o *handlerOptions) { o.rate, o.burst = &perSecond, burst }
}

// WithMiddleware wraps this handler's attempts in mw, inside the worker's middleware
// (see Worker.Use); the first is the outermost.
func WithMiddleware(mw ...Middleware) HandlerOption {
	return func(o *handlerOptions) { o.middleware = append(o.middleware, mw...) }
}

func (o *handlerOptions) validate() error {
	var errs []error
	if o.retry != nil {
		if err := o.retry.withDefaults().validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.timeout != nil && *o.timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must not be negative", *o.timeout))
	}
	if o.concurrency != nil && *o.concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d: must not be negative", *o.concurrency))
	}
	if o.rate != nil && *o.rate < 0 {
		errs = append(errs, fmt.Errorf("rate limit %v: must not be negative", *o.rate))
	}
	if o.burst < 0 {
		errs = append(errs, fmt.Errorf("burst %d: must not be negative", o.burst))
	}
	for i, m := range o.middleware {
		if m == nil {
			errs = append(errs, fmt.Errorf("middleware %d: nil", i))
		}
	}
	return errors.Join(errs...)
}

// PublishOption configures one publish.
type PublishOption func(*publishOptions)

type publishOptions struct {
	id          string
	contentType string
	headers     amqp.Table
	after       time.Duration
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

// After delays a task: it waits in a delay queue of the task's (the retry tiers'
// kind, "<task>.retry.<ms>ms") and enters the task's queue after d, rounded up to two
// significant digits (see the package documentation). d ≤ 0 publishes at once; d
// above the broker's longest TTL (10 years) is an error. Events cannot be delayed.
func After(d time.Duration) PublishOption {
	return func(o *publishOptions) { o.after = d }
}
