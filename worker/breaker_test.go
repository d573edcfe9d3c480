package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBreakerCancelsConsumerAndResumes(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 25*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Concurrency = 1
	cfg.Prefetch = 5
	cfg.Retry = RetryPolicy{MaxAttempts: 10, MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	cfg.Breaker = BreakerConfig{Enabled: true, FailureRatio: 0.5, MinRequests: 4, OpenFor: 300 * time.Millisecond}
	transitions := make(chan string, 64)
	cfg.OnBreakerChange = func(from, to string) {
		select { // the callback must not block the breaker
		case transitions <- from + ">" + to:
		default:
		}
	}
	a.deleteLater(queuesOf(task, cfg.Retry))

	var unhealthy atomic.Bool
	unhealthy.Store(true)
	var mu sync.Mutex
	succeeded := map[string]int{} // job ID → attempt that succeeded
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if unhealthy.Load() {
			return errBoom
		}
		mu.Lock()
		succeeded[j.ID] = j.Attempt
		mu.Unlock()
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	const n = 10
	for range n {
		if err := p.PublishTask(ctx, task, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := recv(t, ctx, transitions); got != "closed>open" {
		t.Fatalf("first transition = %q", got)
	}
	eventually(t, ctx, "consumer count 0 while open", func() bool {
		_, consumers, err := a.inspect(task)
		return err == nil && consumers == 0
	})
	if s := w.Stats(); s.ConsumerActive || s.BreakerState == "closed" || s.BreakerOpened != 1 {
		t.Errorf("stats while open = %+v", s)
	}
	unhealthy.Store(false)
	for tr := ""; tr != "half-open>closed"; {
		tr = recv(t, ctx, transitions)
	}
	eventually(t, ctx, "consumer back", func() bool {
		_, consumers, err := a.inspect(task)
		return err == nil && consumers == 1
	})
	eventually(t, ctx, "all jobs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(succeeded) == n
	})
	s := w.Stats()
	if s.BreakerState != "closed" || !s.ConsumerActive || s.BreakerOpenTime < 300*time.Millisecond || s.DeadLettered != 0 {
		t.Errorf("stats after recovery = %+v", s)
	}
	// Every attempt charged to a job is a real failure: jobs turned away by the open
	// breaker (requeued) were not charged.
	charged := 0
	mu.Lock()
	for _, a := range succeeded {
		charged += a - 1
	}
	mu.Unlock()
	if uint64(charged) != s.Failed {
		t.Errorf("attempts charged %d, failures %d", charged, s.Failed)
	}
	eventually(t, ctx, "a retry per failure", func() bool { s := w.Stats(); return s.Retried == s.Failed })
}

func TestBreakerHealthCheck(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Concurrency = 1
	cfg.Retry = RetryPolicy{MaxAttempts: 10, MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	var healthy atomic.Bool
	checks := make(chan bool, 64)
	cfg.Breaker = BreakerConfig{Enabled: true, MinRequests: 2, OpenFor: 100 * time.Millisecond,
		HealthCheck: func(ctx context.Context) error {
			ok := healthy.Load()
			checks <- ok
			if !ok {
				return errBoom
			}
			return nil
		}}
	a.deleteLater(queuesOf(task, cfg.Retry))
	w, _ := New(cfg)
	done := make(chan struct{}, 4)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if !healthy.Load() {
			return errBoom
		}
		done <- struct{}{}
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	for range 2 {
		_ = p.PublishTask(ctx, task, nil)
	}
	if recv(t, ctx, checks) {
		t.Fatal("first health check saw a healthy dependency")
	}
	// A failed check keeps the consumer off and checks again after OpenFor.
	if _, consumers, _ := a.inspect(task); consumers != 0 {
		t.Errorf("consumers while unhealthy = %d", consumers)
	}
	healthy.Store(true)
	for !recv(t, ctx, checks) {
	}
	recv(t, ctx, done)
	recv(t, ctx, done)
}

// Issue 12, defect 4: permanent errors say nothing about a dependency's health and
// must not open the breaker.
func TestPermanentErrorsDoNotTripTheBreaker(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Breaker = BreakerConfig{Enabled: true, FailureRatio: 0.5, MinRequests: 4, OpenFor: 200 * time.Millisecond}
	a.deleteLater(queuesOf(task, cfg.Retry))
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		return Permanent(errors.New("invoice already paid"))
	})
	start(t, w)
	p := newPublisher(t, app)
	const n = 10
	for range n {
		if err := p.PublishTask(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, ctx, "all dead-lettered", func() bool { return w.Stats().DeadLettered == n })
	if s := w.Stats(); s.BreakerOpened != 0 || s.BreakerState != "closed" {
		t.Errorf("stats = %+v: permanent errors opened the breaker", s)
	}
}

// Issue 12, defect 5: while half-open the worker takes only the probe's jobs; before,
// jobs turned away in half-open were requeued and redelivered at once, thousands of
// times a second.
func TestHalfOpenTakesOnlyTheProbe(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 30*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Prefetch, cfg.Concurrency = 20, 4
	cfg.Retry = RetryPolicy{MaxAttempts: 10, MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	var healthy atomic.Bool
	cfg.Breaker = BreakerConfig{Enabled: true, MinRequests: 4, OpenFor: 200 * time.Millisecond,
		HealthCheck: func(context.Context) error {
			if healthy.Load() {
				return nil
			}
			return errBoom
		}}
	a.deleteLater(queuesOf(task, cfg.Retry))
	var calls atomic.Int64
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if !healthy.Load() {
			return errBoom
		}
		// Healthy jobs of different lengths: after the first, a slot frees while
		// others still run.
		if calls.Add(1)%4 != 1 {
			select {
			case <-time.After(300 * time.Millisecond): // the job's work
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	const n = 40
	for range n {
		if err := p.PublishTask(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, ctx, "breaker open", func() bool { return w.Stats().BreakerOpened >= 1 })
	healthy.Store(true)
	eventually(t, ctx, "all acked", func() bool { return w.Stats().Acked == n })
	// Each open cancels the consumer and returns what was prefetched once: at most
	// the prefetch per opening.
	if s := w.Stats(); s.Requeued > uint64(cfg.Prefetch)*s.BreakerOpened {
		t.Errorf("stats = %+v: %d requeues for %d openings with prefetch %d", s, s.Requeued, s.BreakerOpened, cfg.Prefetch)
	}
}

// Issue 12, defect 8: OnBreakerChange may read the worker's Stats.
func TestStatsInsideOnBreakerChange(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Breaker = BreakerConfig{Enabled: true, MinRequests: 2, OpenFor: time.Minute}
	states := make(chan string, 8)
	var w *Worker
	cfg.OnBreakerChange = func(from, to string) {
		states <- to + "/" + w.Stats().BreakerState
	}
	a.deleteLater(queuesOf(task, cfg.Retry))
	w, _ = New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error { return errBoom })
	r := start(t, w)
	p := newPublisher(t, app)
	for range 2 {
		if err := p.PublishTask(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := recv(t, ctx, states); got != "open/open" {
		t.Errorf("callback saw %q, want open/open", got)
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run = %v", err)
	}
}
