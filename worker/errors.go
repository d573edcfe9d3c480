package worker

import (
	"errors"
	"fmt"
	"time"
)

// ErrClosed is returned by publishes on a worker whose Run has returned, or a closed
// Publisher.
var ErrClosed = errors.New("worker: closed")

// ErrNacked is wrapped by publish errors when the broker refused the message
// (basic.nack), e.g. because a queue overflowed with reject-publish.
var ErrNacked = errors.New("publish not confirmed: broker nacked")

// Permanent marks err as not worth retrying: the job goes straight to the recovery
// function and the dead-letter queue.
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
// the policy's backoff. The delay is capped at MaxDelay (and in broker mode at the
// longest retry tier).
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

// panicError is a handler panic turned into a failure.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }

// errExcluded is given to the breaker for outcomes that say nothing about health.
var errExcluded = errors.New("excluded from breaker counts")
