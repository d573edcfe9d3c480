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
	// Reading the clock costs more than the rest of the runtime's work per delivery on
	// some machines, so attempts are timed only for a Prometheus collector.
	var start time.Time
	timed := w.timed.Load()
	if timed {
		start = time.Now()
	}
	var err error
	if h.timeout <= 0 {
		err = w.callHandler(h, job) // the common path, without a closure to allocate
	} else {
		err = w.bounded(&job.ctx, h.timeout, job, "handler", func(ctx context.Context) error { return h.call(ctx, job) })
	}
	if timed {
		h.m.observe(time.Since(start))
	}
	h.m.count(err)
	return err
}

// callHandler runs the handler in the caller's goroutine; a panic is an error.
func (w *Worker) callHandler(h *handler, job *Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = w.panicked(job, "handler", r)
		}
	}()
	return h.call(&job.ctx, job)
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
			err = w.panicked(job, what, r)
		}
	}()
	return fn()
}

func (w *Worker) panicked(job *Job, what string, r any) error {
	pe := &panicError{value: r, stack: debug.Stack()}
	w.log.Error(what+" panicked", "tid", job.TID, "job", job.Name, "id", job.ID, "panic", r, "stack", string(pe.stack))
	return pe
}
