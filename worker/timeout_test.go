package worker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTimeoutIsFreshPerAttemptAndRetriable(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Timeout = 150 * time.Millisecond
	a.deleteLater(queuesOf(task, cfg.Retry))
	type result struct {
		attempt  int
		deadline time.Time
		err      error
	}
	results := make(chan result, 4)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		dl, ok := ctx.Deadline()
		if !ok {
			return Permanent(errors.New("no deadline"))
		}
		if time.Until(dl) > cfg.Timeout {
			return Permanent(errors.New("deadline beyond the timeout"))
		}
		if j.Attempt == 1 {
			<-ctx.Done()
			results <- result{1, dl, ctx.Err()}
			return ctx.Err()
		}
		results <- result{j.Attempt, dl, ctx.Err()}
		return nil
	})
	start(t, w)
	if err := w.PublishTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	r1, r2 := recv(t, ctx, results), recv(t, ctx, results)
	if !errors.Is(r1.err, context.DeadlineExceeded) || r2.attempt != 2 {
		t.Fatalf("attempts = %+v, %+v", r1, r2)
	}
	// The retry runs after the first deadline passed, with a deadline of its own.
	if !r2.deadline.After(r1.deadline) || r2.err != nil {
		t.Errorf("attempt 2 deadline %v (err %v) is not fresh after attempt 1's %v", r2.deadline, r2.err, r1.deadline)
	}
	eventually(t, ctx, "1 failure, 1 retry, 1 ack", func() bool {
		s := w.Stats()
		return s.Acked == 1 && s.Failed == 1 && s.Retried == 1
	})
}

// Issue 12, defect 10: a handler that ignores its context fails its attempt at the
// deadline and frees its slot; shutdown does not wait for it.
func TestTimeoutIsEnforced(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Concurrency = 1
	cfg.Timeout = 100 * time.Millisecond
	cfg.ShutdownTimeout = 200 * time.Millisecond
	cfg.Retry = RetryPolicy{MaxAttempts: 2, MinDelay: 10 * time.Millisecond}
	a.deleteLater(queuesOf(task, cfg.Retry))
	release := make(chan struct{})
	released := make(chan struct{})
	attempts := make(chan int, 4)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		attempts <- j.Attempt
		if j.Attempt == 1 {
			<-release // ignores ctx, then claims success
			close(released)
			return nil
		}
		return nil
	})
	r := start(t, w)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	if err := newPublisher(t, app).PublishTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, ctx, attempts); n != 1 {
		t.Fatalf("attempt %d", n)
	}
	// With one slot, attempt 2 can only run if the hung attempt gave its slot up.
	if n := recv(t, ctx, attempts); n != 2 {
		t.Fatalf("attempt %d", n)
	}
	eventually(t, ctx, "attempt 2 acked", func() bool { return w.Stats().Acked == 1 })
	if s := w.Stats(); s.Abandoned != 1 {
		t.Errorf("stats = %+v, want the hung handler counted as abandoned", s)
	}
	began := time.Now()
	if err := r.stop(t); err != nil {
		t.Errorf("Run = %v", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("shutdown waited %v for a handler that ignores its context", d)
	}
	close(release)
	recv(t, ctx, released)
	eventually(t, ctx, "the abandoned handler gone", func() bool { return w.Stats().Abandoned == 0 })
	if s := w.Stats(); s.Acked != 1 || s.Failed != 1 || s.Retried != 1 {
		t.Errorf("stats = %+v: want the late success ignored", s)
	}
}
