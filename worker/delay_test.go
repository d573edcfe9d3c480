package worker

import (
	"context"
	"strings"
	"testing"
	"time"
)

// After delays a task in a delay queue of its own TTL (shared with the retry tiers'
// naming), then the task's queue gets it.
func TestDelayedTask(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.later"
	cfg := baseConfig(t, app)
	a.deleteLater(append(queuesOf(task, cfg.Retry), retryQueue(task, 300*time.Millisecond), retryQueue(task, 310*time.Millisecond)))
	got := make(chan time.Time, 4)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if j.Attempt != 1 || j.TID != "tid-later" {
			return Permanent(errBoom)
		}
		got <- time.Now()
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	began := time.Now()
	if err := p.PublishTask(WithTID(ctx, "tid-later"), task, nil, After(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ctx, got).Sub(began); d < 300*time.Millisecond {
		t.Errorf("delayed task arrived after %v, want at least 300ms", d)
	}
	// From a handler's worker too; 301ms rounds up to 310ms, never down.
	began = time.Now()
	if err := w.PublishTask(WithTID(ctx, "tid-later"), task, nil, After(301*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ctx, got).Sub(began); d < 310*time.Millisecond {
		t.Errorf("delayed task arrived after %v, want at least 310ms", d)
	}
	if _, _, err := a.inspect(retryQueue(task, 310*time.Millisecond)); err != nil {
		t.Errorf("delay queue of 310ms: %v", err)
	}
	if err := p.PublishTask(ctx, task, nil, After(11*365*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "longest TTL") {
		t.Errorf("After(11 years) = %v", err)
	}
	if err := p.PublishEvent(ctx, app+".happened", nil, After(time.Second)); err == nil {
		t.Error("an event was delayed")
	}
}
