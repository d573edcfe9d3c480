package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTaskRoundTrip(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	a.deleteLater(queuesOf(task, cfg.Retry))

	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	jobs := make(chan *Job, 1)
	if err := w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if TIDFrom(ctx) != j.TID || JobFrom(ctx) != j {
			return Permanent(errors.New("context does not carry the job"))
		}
		Logger(ctx).Debug("handling")
		jobs <- j
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start(t, w)

	p := newPublisher(t, app)
	before := time.Now().Add(-time.Second)
	if err := p.PublishTask(WithTID(ctx, "tid-1"), task, []byte("hello"), WithHeader("x-bench-seq", int64(7)), WithMessageID("job-1")); err != nil {
		t.Fatal(err)
	}
	j := recv(t, ctx, jobs)
	if j.ID != "job-1" || j.TID != "tid-1" || j.Name != task || j.Queue != task || j.Attempt != 1 || j.Redelivered || string(j.Body) != "hello" {
		t.Errorf("job = %+v", j)
	}
	if j.Headers["x-bench-seq"] != int64(7) {
		t.Errorf("publisher header lost: %v", j.Headers)
	}
	if j.FirstPublished.Before(before) || j.FirstPublished.After(time.Now()) {
		t.Errorf("first published = %v", j.FirstPublished)
	}
	eventually(t, ctx, "ack", func() bool { return w.Stats().Acked == 1 })
	if s := w.Stats(); !s.ConsumerActive || s.Started != 1 || s.InFlight != 0 || s.BreakerState != "disabled" {
		t.Errorf("stats = %+v", s)
	}

	// Ownership and names are enforced before anything reaches the broker.
	if err := w.PublishTask(ctx, "other.job.run", nil); err == nil || !strings.Contains(err.Error(), "owning app") {
		t.Errorf("PublishTask(other app) = %v", err)
	}
	if err := p.PublishEvent(ctx, "Bad.event", nil); err == nil {
		t.Error("PublishEvent accepted a bad name")
	}
	if err := w.HandleTask(app+".job.late", func(context.Context, *Job) error { return nil }); err == nil {
		t.Error("HandleTask after Run succeeded")
	}
}

func TestTIDSurvivesTaskEventTask(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	first, second, event := app+".order.place", app+".order.ship", app+".placed"
	cfg := baseConfig(t, app)
	a.deleteLater(append(append(queuesOf(first, cfg.Retry), queuesOf(second, cfg.Retry)...), queuesOf(EventQueue(app, event), cfg.Retry)...), event)
	w, _ := New(cfg)
	_ = w.HandleTask(first, func(ctx context.Context, j *Job) error {
		return w.PublishEvent(ctx, event, j.Body)
	})
	_ = w.HandleEvent(event, func(ctx context.Context, j *Job) error {
		return w.PublishTask(ctx, second, j.Body)
	})
	tids := make(chan string, 2)
	_ = w.HandleTask(second, func(ctx context.Context, j *Job) error {
		tids <- j.TID
		return nil
	})
	start(t, w)
	if err := w.PublishTask(WithTID(ctx, "tid-chain"), first, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ctx, tids); got != "tid-chain" {
		t.Errorf("TID at the end of the chain = %q", got)
	}
	// Without a TID in the context a publish starts a new transaction.
	if err := w.PublishTask(ctx, first, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ctx, tids); got == "" || got == "tid-chain" {
		t.Errorf("new transaction got TID %q", got)
	}
}
