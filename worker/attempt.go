package worker

import (
	"context"
	"errors"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// abandonGrace is how long past a deadline a handler may take to return before it is
// abandoned: a handler that honours its context returns within it, and is then
// neither counted nor logged as abandoned.
const abandonGrace = 20 * time.Millisecond

// errLateSuccess is the outcome of a handler that returned nil after its deadline.
var errLateSuccess = errors.New("handler returned nil after its deadline")

// attempt runs the handler once (inside its middleware) with a fresh deadline and
// records the attempt in the handler's metrics.
func (w *Worker) attempt(h *handler, job *Job) error {
	w.stats.started.Add(1)
	start := time.Now()
	err := w.bounded(&job.ctx, h.timeout, job, "handler", func(ctx context.Context) error { return h.call(ctx, job) })
	h.m.observe(time.Since(start), err)
	return err
}

// bounded runs fn with ctx, under timeout when it is positive. A panic is an error.
// With a timeout, fn runs in a goroutine of its own: at the deadline the call fails
// and returns even if fn ignores its context; fn is then abandoned (counted in
// Stats.Abandoned until it returns, and its result discarded). Without a timeout, fn
// runs in the caller's goroutine, which costs nothing.
func (w *Worker) bounded(parent context.Context, timeout time.Duration, job *Job, what string, fn func(context.Context) error) error {
	if timeout <= 0 {
		return w.protect(job, what, func() error { return fn(parent) })
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	type result struct {
		err error
		at  time.Time
	}
	res := make(chan result, 1)
	var state atomic.Int32 // 0 running, 1 returned, 2 abandoned
	go func() {
		err := w.protect(job, what, func() error { return fn(ctx) })
		if state.CompareAndSwap(0, 1) {
			res <- result{err, time.Now()}
			return
		}
		w.stats.abandoned.Add(-1)
		w.log.Warn("abandoned "+what+" returned", "tid", job.TID, "job", job.Name, "id", job.ID, "err", err)
	}()
	outcome := func(r result) error {
		if r.err == nil && ctx.Err() == context.DeadlineExceeded && r.at.After(deadline) {
			return errLateSuccess
		}
		return r.err
	}
	select {
	case r := <-res:
		return outcome(r)
	case <-ctx.Done():
	}
	grace := time.NewTimer(abandonGrace)
	defer grace.Stop()
	select {
	case r := <-res:
		return outcome(r)
	case <-grace.C:
	}
	w.stats.abandoned.Add(1)
	if !state.CompareAndSwap(0, 2) {
		w.stats.abandoned.Add(-1)
		return outcome(<-res)
	}
	w.log.Warn(what+" ignores its context; abandoned at its deadline", "tid", job.TID, "job", job.Name, "id", job.ID, "timeout", timeout)
	return &abandonedError{after: timeout, cause: ctx.Err()}
}

// protect calls fn and turns a panic into an error.
func (w *Worker) protect(job *Job, what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			pe := &panicError{value: r, stack: debug.Stack()}
			w.log.Error(what+" panicked", "tid", job.TID, "job", job.Name, "id", job.ID, "panic", r, "stack", string(pe.stack))
			err = pe
		}
	}()
	return fn()
}
