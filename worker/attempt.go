package worker

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
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
		err = w.callHandler(h, job) // the common path: in this goroutine, no allocation
	} else {
		err = w.bounded(h.timeout, job, "handler", h, nil)
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

// boundedCall is one run of a handler (h) or a recovery function (fn) under a
// deadline, shared by the caller and the goroutine that runs it. Calls that end in
// time are reused; an abandoned one belongs to its goroutine.
type boundedCall struct {
	w     *Worker
	job   *Job
	what  string
	h     *handler
	fn    func(context.Context) error
	ctx   context.Context
	state atomic.Int32 // 0 running, 1 returned in time, 2 abandoned
	err   error
	late  bool          // returned after its context was done
	done  chan struct{} // a token once state is 1
}

var boundedCalls = sync.Pool{New: func() any { return &boundedCall{done: make(chan struct{}, 1)} }}

func (c *boundedCall) run() {
	err := c.invoke()
	late := c.ctx.Err() != nil
	if c.state.CompareAndSwap(0, 1) {
		c.err, c.late = err, late
		c.done <- struct{}{}
		return
	}
	c.w.stats.abandoned.Add(-1)
	c.w.log.Warn("abandoned "+c.what+" returned", "tid", c.job.TID, "job", c.job.Name, "id", c.job.ID, "err", err)
}

func (c *boundedCall) invoke() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = c.w.panicked(c.job, c.what, r)
		}
	}()
	if c.h != nil {
		return c.h.call(c.ctx, c.job)
	}
	return c.fn(c.ctx)
}

// bounded runs h's handler (or fn) for job with a deadline of timeout, in a goroutine
// of its own: at the deadline the call fails and returns even if the handler ignores
// its context. Such a handler is abandoned: counted in Stats.Abandoned until it
// returns, and what it returns is discarded. A handler that honours its context
// returns within abandonGrace and is not abandoned; a nil it returns after the
// deadline is still a failure (errLateSuccess). A panic is an error.
func (w *Worker) bounded(timeout time.Duration, job *Job, what string, h *handler, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(&job.ctx, timeout)
	defer cancel()
	c := boundedCalls.Get().(*boundedCall)
	c.w, c.job, c.what, c.h, c.fn, c.ctx = w, job, what, h, fn, ctx
	c.state.Store(0)
	go c.run()
	select {
	case <-c.done:
		return c.finish()
	case <-ctx.Done():
	}
	grace := time.NewTimer(abandonGrace)
	defer grace.Stop()
	select {
	case <-c.done:
		return c.finish()
	case <-grace.C:
	}
	w.stats.abandoned.Add(1)
	if !c.state.CompareAndSwap(0, 2) {
		w.stats.abandoned.Add(-1)
		<-c.done
		return c.finish()
	}
	w.log.Warn(what+" ignores its context; abandoned at its deadline", "tid", job.TID, "job", job.Name, "id", job.ID, "timeout", timeout)
	return &abandonedError{after: timeout, cause: ctx.Err()}
}

// finish takes the outcome of a call that returned in time and recycles the call.
func (c *boundedCall) finish() error {
	err := c.err
	if err == nil && c.late && c.ctx.Err() == context.DeadlineExceeded {
		err = errLateSuccess
	}
	*c = boundedCall{done: c.done}
	boundedCalls.Put(c)
	return err
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
