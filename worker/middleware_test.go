package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Middleware wraps every attempt, the worker's outside the handler's own, and sees the
// attempt's deadline and Job; retries stay the runtime's.
func TestMiddlewareWrapsEveryAttempt(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Timeout = 5 * time.Second
	cfg.Retry = RetryPolicy{MaxAttempts: 2, MinDelay: 10 * time.Millisecond}
	a.deleteLater(queuesOf(task, cfg.Retry))
	var mu sync.Mutex
	var trail []string
	mark := func(name string) Middleware {
		return func(next HandlerFunc) HandlerFunc {
			return func(ctx context.Context, j *Job) error {
				_, hasDeadline := ctx.Deadline()
				mu.Lock()
				trail = append(trail, name+">")
				if JobFrom(ctx) != j || !hasDeadline {
					trail = append(trail, name+":no-job-or-deadline")
				}
				mu.Unlock()
				err := next(ctx, j)
				mu.Lock()
				trail = append(trail, "<"+name)
				mu.Unlock()
				return err
			}
		}
	}
	w, _ := New(cfg)
	if err := w.Use(mark("a"), mark("b")); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 2)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		mu.Lock()
		trail = append(trail, "handler")
		mu.Unlock()
		if j.Attempt == 1 {
			return errBoom
		}
		done <- j.Attempt
		return nil
	}, WithMiddleware(mark("c")))
	start(t, w)
	if err := w.Use(mark("late")); !IsConfigError(err) {
		t.Errorf("Use after Run = %v, want a ConfigError", err)
	}
	if err := w.PublishTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, ctx, done); n != 2 {
		t.Fatalf("attempt %d", n)
	}
	eventually(t, ctx, "ack", func() bool { return w.Stats().Acked == 1 })
	mu.Lock()
	got := strings.Join(trail, " ")
	mu.Unlock()
	once := "a> b> c> handler <c <b <a"
	if got != once+" "+once {
		t.Errorf("trail = %q, want %q twice (one per attempt)", got, once)
	}
	if err := w.Use(nil); err == nil {
		t.Error("Use(nil) accepted")
	}
	if err := w.HandleTask(app+".job.other", func(context.Context, *Job) error { return nil }, WithMiddleware(nil)); !errors.As(err, new(*ConfigError)) {
		t.Errorf("WithMiddleware(nil) = %v", err)
	}
}
