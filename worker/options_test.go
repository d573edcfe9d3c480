package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// Per-handler options override the worker's retry policy, timeout and concurrency.
func TestHandlerOptionsOverrideTheWorkers(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	strict, lax := app+".job.strict", app+".job.lax"
	cfg := baseConfig(t, app)
	cfg.Concurrency = 1
	cfg.Prefetch = 10
	cfg.Retry = RetryPolicy{MaxAttempts: 3, MinDelay: 10 * time.Millisecond}
	strictRetry := RetryPolicy{MaxAttempts: 1}
	a.deleteLater(append(queuesOf(strict, strictRetry), queuesOf(lax, cfg.Retry)...))

	type seen struct {
		task     string
		attempt  int
		deadline time.Duration
	}
	seenc := make(chan seen, 32)
	var cur, peak atomic.Int32
	release := make(chan struct{})
	w, _ := New(cfg)
	handler := func(ctx context.Context, j *Job) error {
		var left time.Duration
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
		}
		seenc <- seen{j.Name, j.Attempt, left}
		if string(j.Body) == "block" {
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			cur.Add(-1)
			return nil
		}
		return errBoom
	}
	if err := w.HandleTask(strict, handler, WithRetry(strictRetry), WithTimeout(time.Minute), WithConcurrency(3)); err != nil {
		t.Fatal(err)
	}
	if err := w.HandleTask(lax, handler); err != nil {
		t.Fatal(err)
	}
	start(t, w)
	p := newPublisher(t, app)
	for _, task := range []string{strict, lax} {
		if err := p.PublishTask(ctx, task, []byte("fail")); err != nil {
			t.Fatal(err)
		}
	}
	attempts := map[string]int{}
	for attempts[strict]+attempts[lax] < 1+3 {
		s := recv(t, ctx, seenc)
		attempts[s.task]++
		if s.task == strict && (s.deadline <= 50*time.Second || s.deadline > time.Minute) {
			t.Errorf("strict attempt deadline in %v, want its own 1m", s.deadline)
		}
		if s.task == lax && s.deadline != 0 {
			t.Errorf("lax attempt has a deadline in %v, want none", s.deadline)
		}
	}
	eventually(t, ctx, "both dead-lettered", func() bool { return w.Stats().DeadLettered == 2 })
	if attempts[strict] != 1 || attempts[lax] != 3 {
		t.Errorf("attempts = %v, want strict 1 (its own policy), lax 3 (the worker's)", attempts)
	}
	// Concurrency 3 for strict: three blocking jobs run at once.
	for range 3 {
		if err := p.PublishTask(ctx, strict, []byte("block")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, ctx, "three strict jobs at once", func() bool { return cur.Load() == 3 })
	close(release)
	eventually(t, ctx, "all acked", func() bool { return w.Stats().Acked == 3 })
}

func TestHandlerOptionsResolve(t *testing.T) {
	w, err := New(Config{URL: "amqp://localhost/", App: "app", Prefetch: 1, RateLimit: 50, Burst: 5, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	nop := func(context.Context, *Job) error { return nil }
	_ = w.HandleTask("app.job.shared", nop)
	_ = w.HandleTask("app.job.own", nop, WithRateLimit(2, 0))
	_ = w.HandleTask("app.job.free", nop, WithRateLimit(0, 0))
	hs := w.handlers
	if hs[0].limiter != w.limiter || hs[0].limiter.Limit() != 50 || hs[0].limiter.Burst() != 5 {
		t.Errorf("shared handler limiter = %v", hs[0].limiter)
	}
	if hs[1].limiter == w.limiter || hs[1].limiter.Limit() != rate.Limit(2) || hs[1].limiter.Burst() != 1 {
		t.Errorf("own limiter = %+v", hs[1].limiter)
	}
	if hs[2].limiter != nil {
		t.Errorf("WithRateLimit(0) kept a limiter")
	}
	for _, opt := range []HandlerOption{
		WithConcurrency(-1), WithTimeout(-time.Second), WithRateLimit(-1, 0), WithRateLimit(1, -1),
		WithRetry(RetryPolicy{MinDelay: time.Microsecond}), WithRetry(RetryPolicy{Mode: "later"}),
	} {
		if err := w.HandleTask("app.job.bad", nop, opt); !IsConfigError(err) {
			t.Errorf("HandleTask with a bad option = %v, want a ConfigError", err)
		}
	}
}
