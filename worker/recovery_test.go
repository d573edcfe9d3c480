package worker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestRecoveryAndDeadLetter(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task, typed := app+".job.run", app+".job.typed"
	cfg := baseConfig(t, app)
	cfg.Retry = RetryPolicy{MaxAttempts: 2, MinDelay: 10 * time.Millisecond}
	a.deleteLater(append(queuesOf(task, cfg.Retry), queuesOf(typed, cfg.Retry)...))

	type recovery struct {
		body    string
		attempt int
		err     error
	}
	recovered := make(chan recovery, 8)
	w, _ := New(cfg)
	err := w.HandleTask(task, func(ctx context.Context, j *Job) error {
		switch string(j.Body) {
		case "perm":
			return Permanent(errBoom)
		case "panic":
			panic("handler exploded")
		}
		return errBoom
	}, WithRecovery(func(ctx context.Context, j *Job, err error) error {
		recovered <- recovery{string(j.Body), j.Attempt, err}
		switch string(j.Body) {
		case "panic":
			panic("recovery exploded")
		case "recfail":
			return errors.New("recovery failed")
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	type payload struct{ N int }
	typedCalls := make(chan payload, 1)
	if err := w.HandleTask(typed, JSON(func(ctx context.Context, j *Job, p payload) error {
		typedCalls <- p
		return nil
	}), WithRecovery(func(ctx context.Context, j *Job, err error) error {
		recovered <- recovery{"typed", j.Attempt, err}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	start(t, w)

	p := newPublisher(t, app)
	bodies := []string{"fail", "perm", "panic", "recfail"}
	for i, b := range bodies {
		if err := p.PublishTask(WithTID(ctx, "tid-"+b), task, []byte(b), WithHeader("x-bench-seq", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.PublishTask(WithTID(ctx, "tid-typed"), typed, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishTask(ctx, typed, []byte(`{"N":3}`)); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ctx, typedCalls); got.N != 3 {
		t.Errorf("typed payload = %+v", got)
	}

	wantAttempts := map[string]int{"fail": 2, "perm": 1, "panic": 2, "recfail": 2}
	for range bodies {
		r := recv(t, ctx, recovered)
		if r.attempt != wantAttempts[r.body] || r.err == nil {
			t.Errorf("recovery of %q at attempt %d with %v, want attempt %d", r.body, r.attempt, r.err, wantAttempts[r.body])
		}
	}
	dead := a.get(ctx, DeadQueue(task), len(bodies))
	for _, d := range dead {
		b := string(d.Body)
		if d.Headers[HeaderAttempts] != int32(wantAttempts[b]) || d.Headers[HeaderTID] != "tid-"+b ||
			d.Headers[HeaderOriginalQueue] != task || d.Headers["x-bench-seq"] == nil || d.DeliveryMode != amqp.Persistent {
			t.Errorf("dead %q headers = %v", b, d.Headers)
		}
		if e, _ := d.Headers[HeaderError].(string); !strings.Contains(e, map[bool]string{true: "panicked", false: "boom"}[b == "panic"]) {
			t.Errorf("dead %q x-error = %q", b, e)
		}
		if ms, ok := d.Headers[HeaderDiedAt].(int64); !ok || time.Since(time.UnixMilli(ms)) > time.Minute {
			t.Errorf("dead %q x-died-at = %v", b, d.Headers[HeaderDiedAt])
		}
	}
	// The malformed payload skips retries and the recovery function.
	bad := a.get(ctx, DeadQueue(typed), 1)[0]
	if bad.Headers[HeaderAttempts] != int32(1) || !strings.Contains(bad.Headers[HeaderError].(string), "malformed") || bad.Headers[HeaderTID] != "tid-typed" {
		t.Errorf("malformed dead headers = %v", bad.Headers)
	}
	select {
	case r := <-recovered:
		t.Errorf("unexpected recovery %+v", r)
	default:
	}
	eventually(t, ctx, "5 dead-lettered, 4 recovered, 1 acked", func() bool {
		s := w.Stats()
		return s.DeadLettered == 5 && s.Recovered == 4 && s.Acked == 1
	})
}

// Issue 12, defect 11: when the dead-letter publish fails, the recovery function must
// not run again. Before, the job was requeued, ran past MaxAttempts and recovered again.
func TestRecoveryRunsOnceWhenDeadLetteringFails(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Retry = RetryPolicy{MaxAttempts: 1}
	failures := make(chan struct{}, 64)
	cfg.Logger = slog.New(matchHandler{substr: "dead", c: failures})
	a.deleteLater(queuesOf(task, cfg.Retry))
	var attempts, recoveries atomic.Int32
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		attempts.Add(1)
		return errBoom
	}, WithRecovery(func(ctx context.Context, j *Job, err error) error {
		recoveries.Add(1)
		return nil
	}))
	start(t, w)
	// Replace the dead queue by one that refuses every message.
	if _, err := a.channel().QueueDelete(DeadQueue(task), false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.channel().QueueDeclare(DeadQueue(task), true, false, false, false, amqp.Table{
		"x-max-length": int32(0), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	if err := newPublisher(t, app).PublishTask(ctx, task, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Two failed dead-letter publishes: by then a requeued job would have run again.
	recv(t, ctx, failures)
	recv(t, ctx, failures)
	if a, r := attempts.Load(), recoveries.Load(); a != 1 || r != 1 {
		t.Fatalf("%d attempts, %d recoveries after failed dead-lettering, want 1 and 1", a, r)
	}
	// Once the dead queue accepts messages again the job lands there.
	if _, err := a.channel().QueueDelete(DeadQueue(task), false, false, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the dead queue declared again, holding the job", func() bool {
		ready, _, err := a.inspect(DeadQueue(task))
		return err == nil && ready == 1
	})
	if got := a.get(ctx, DeadQueue(task), 1); string(got[0].Body) != "x" {
		t.Errorf("dead letter body %q", got[0].Body)
	}
	if a, r := attempts.Load(), recoveries.Load(); a != 1 || r != 1 {
		t.Errorf("%d attempts, %d recoveries, want 1 and 1", a, r)
	}
}
