package worker

import (
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrClosed is returned by publishes on a worker whose Run has returned, or a closed
// Publisher.
var ErrClosed = errors.New("worker: closed")

// Publish outcomes other than a confirm. A publish that returns an error wrapping
// ErrNacked or ErrUnroutable was not stored; one wrapping ErrUnconfirmed may or may
// not have been.
var (
	// ErrNacked: the broker refused the message (basic.nack), e.g. because a queue
	// overflowed with reject-publish.
	ErrNacked = errors.New("publish not confirmed: broker nacked")
	// ErrUnroutable: the broker returned the message because no queue took it (the
	// queue was deleted and could not be declared again).
	ErrUnroutable = errors.New("publish returned: no queue took it")
	// ErrUnconfirmed: the outcome is unknown. The channel or connection closed, or
	// the wait timed out, before the broker confirmed or refused the message.
	ErrUnconfirmed = errors.New("publish outcome unknown: no confirm")
)

// ConfigError is a problem that retrying cannot fix. New, HandleTask and
// HandleEvent return it for configuration that is invalid on its face (all problems
// at once); Run returns it, instead of reconnecting, when the broker refuses what the
// configuration asks for: credentials, permissions (ACCESS_REFUSED, NOT_ALLOWED), a
// queue or exchange that exists with other arguments or an argument the broker
// rejects (PRECONDITION_FAILED). The broker's *amqp.Error is in the chain when there
// is one.
type ConfigError struct {
	// Op is what was being done or checked, e.g. "invalid worker config", "connect",
	// "declare topology".
	Op  string
	Err error
}

func (e *ConfigError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigError reports whether err is (or wraps) a ConfigError.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// refused reports whether err is the broker refusing something that reconnecting
// will not change.
func refused(err error) bool {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case amqp.AccessRefused, amqp.PreconditionFailed, amqp.NotAllowed, amqp.NotImplemented:
		return true
	}
	return false
}

// asFatal returns err as a ConfigError when the broker refused it for good, or nil.
func asFatal(op string, err error) error {
	if err == nil {
		return nil
	}
	if IsConfigError(err) {
		return err
	}
	if refused(err) {
		return &ConfigError{Op: op, Err: err}
	}
	return nil
}

// Permanent marks err as not worth retrying: the job goes straight to the recovery
// function and the dead-letter queue. It does not count against the breaker.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfter is a retriable failure that asks for the next attempt after d instead of
// the policy's backoff. The delay is capped at MaxDelay and rounded up to two
// significant digits (see the package documentation on delays).
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		err = errors.New("retry requested")
	}
	return &retryAfterError{after: d, err: err}
}

type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("retry after %v: %v", e.after, e.err)
}
func (e *retryAfterError) Unwrap() error { return e.err }

// malformedError is a payload that cannot be decoded; it is dead-lettered at once.
type malformedError struct{ err error }

func (e *malformedError) Error() string { return "malformed payload: " + e.err.Error() }
func (e *malformedError) Unwrap() error { return e.err }

// Malformed marks err as a payload that can never be handled: the job is dead-lettered
// at once, without retries or the recovery function. The JSON adapter uses it.
func Malformed(err error) error {
	if err == nil {
		return nil
	}
	return &malformedError{err: err}
}

func isMalformed(err error) bool {
	var m *malformedError
	return errors.As(err, &m)
}

// panicError is a handler panic turned into a failure.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }

// abandonedError is an attempt whose deadline passed while its handler, ignoring its
// context, still ran: the attempt failed there and the handler was left behind.
type abandonedError struct {
	after time.Duration
	cause error // the context's error: deadline exceeded, or cancelled by shutdown
}

func (e *abandonedError) Error() string {
	return fmt.Sprintf("handler still running %v after the attempt began, past its deadline; abandoned: %v", e.after, e.cause)
}
func (e *abandonedError) Unwrap() error { return e.cause }

// errExcluded is given to the breaker for outcomes that say nothing about health.
var errExcluded = errors.New("excluded from breaker counts")
