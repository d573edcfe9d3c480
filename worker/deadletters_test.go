package worker

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestDeadLettersPeekReplayPurge(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".invoice.send"
	cfg := baseConfig(t, app)
	cfg.Retry = RetryPolicy{MaxAttempts: 2, MinDelay: 10 * time.Millisecond}
	a.deleteLater(queuesOf(task, cfg.Retry))
	var healthy atomic.Bool
	type done struct {
		id, tid string
		attempt int
		replays int64
	}
	handled := make(chan done, 8)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if !healthy.Load() {
			return errBoom
		}
		n, _ := j.HeaderInt(HeaderReplays)
		handled <- done{j.ID, j.TID, j.Attempt, n}
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	ids := []string{"inv-1", "inv-2", "inv-3"}
	for _, id := range ids {
		if err := p.PublishTask(WithTID(ctx, "tid-"+id), task, []byte(id), WithMessageID(id)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, ctx, "3 dead letters", func() bool { return w.Stats().DeadLettered == 3 })

	if _, err := OpenDeadLetters(ctx, DeadLetterConfig{URL: cfg.URL, Queue: app + ".no.such"}); !errors.Is(err, ErrNoDeadQueue) {
		t.Errorf("OpenDeadLetters(missing) = %v, want ErrNoDeadQueue", err)
	}
	q, err := OpenDeadLetters(ctx, DeadLetterConfig{URL: cfg.URL, Queue: DeadQueue(task)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Queue() != task {
		t.Errorf("Queue() = %q", q.Queue())
	}
	peeked, err := q.Peek(ctx, 2)
	if err != nil || len(peeked) != 2 {
		t.Fatalf("Peek(2) = %v, %v", peeked, err)
	}
	for _, dl := range peeked {
		if !slices.Contains(ids, dl.ID) || dl.TID != "tid-"+dl.ID || dl.Attempts != 2 || dl.Queue != task ||
			dl.Error == "" || time.Since(dl.DiedAt) > time.Minute || string(dl.Body) != dl.ID {
			t.Errorf("peeked %+v", dl)
		}
	}
	// The broker requeues what Peek returned asynchronously.
	eventually(t, ctx, "peeked messages back in the queue", func() bool {
		n, err := q.Len(ctx)
		return err == nil && n == 3
	})

	healthy.Store(true)
	n, err := q.Replay(ctx, ReplayOptions{IDs: []string{"inv-2"}})
	if err != nil || n != 1 {
		t.Fatalf("Replay(inv-2) = %d, %v", n, err)
	}
	if d := recv(t, ctx, handled); d.id != "inv-2" || d.tid != "tid-inv-2" || d.attempt != 1 || d.replays != 1 {
		t.Errorf("replayed job = %+v, want inv-2 with its TID, attempt 1, replayed once", d)
	}
	rest, err := q.Peek(ctx, 10)
	if err != nil || len(rest) != 2 || rest[0].ID != "inv-1" || rest[1].ID != "inv-3" {
		t.Fatalf("after replaying inv-2 the queue holds %v (%v), want inv-1 and inv-3 in order", rest, err)
	}
	healthy.Store(false)
	if n, err := q.Purge(ctx); err != nil || n != 2 {
		t.Errorf("Purge = %d, %v", n, err)
	}
	if n, err := q.Len(ctx); err != nil || n != 0 {
		t.Errorf("Len after Purge = %d, %v", n, err)
	}
}

// Replay without a limit looks only at what was there when it began: a replayed job
// that dies again is not replayed a second time in the same call.
func TestDeadLettersReplayAllStopsAtWhatWasThere(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".invoice.send"
	cfg := baseConfig(t, app)
	cfg.Retry = RetryPolicy{MaxAttempts: 1}
	a.deleteLater(queuesOf(task, cfg.Retry))
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error { return errBoom })
	start(t, w)
	p := newPublisher(t, app)
	for range 5 {
		if err := p.PublishTask(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, ctx, "5 dead letters", func() bool { return w.Stats().DeadLettered == 5 })
	q, err := OpenDeadLetters(ctx, DeadLetterConfig{URL: cfg.URL, Queue: task})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	n, err := q.Replay(ctx, ReplayOptions{})
	if err != nil || n != 5 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	eventually(t, ctx, "10 dead letters", func() bool { return w.Stats().DeadLettered == 10 })
	dls, err := q.Peek(ctx, 10)
	if err != nil || len(dls) != 5 {
		t.Fatalf("Peek = %d, %v", len(dls), err)
	}
	for _, dl := range dls {
		if dl.Replays != 1 || dl.Attempts != 1 {
			t.Errorf("dead again: %+v, want replays 1, attempts 1", dl)
		}
	}
}
