package worker

import (
	"context"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryTiersDelaysAndNoHeadOfLineBlocking(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 30*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Retry = RetryPolicy{MaxAttempts: 7, MinDelay: 100 * time.Millisecond, MaxDelay: 3 * time.Second}
	a.deleteLater(queuesOf(task, cfg.Retry))

	type attempt struct {
		body   string
		n      int
		at     time.Time
		queue  string
		header any
		seq    any
		first  time.Time
	}
	seen := make(chan attempt, 16)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		seen <- attempt{body: string(j.Body), n: j.Attempt, at: time.Now(), queue: j.Queue, header: j.Headers[HeaderAttempt], seq: j.Headers["x-bench-seq"], first: j.FirstPublished}
		switch {
		case string(j.Body) == "slow" && j.Attempt == 1:
			return RetryAfter(3*time.Second, errBoom)
		case string(j.Body) == "fast" && j.Attempt < 4:
			return errBoom
		}
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	for _, b := range []string{"slow", "fast"} {
		if err := p.PublishTask(ctx, task, []byte(b), WithHeader("x-bench-seq", int64(len(b)))); err != nil {
			t.Fatal(err)
		}
	}
	times := map[string][]time.Time{}
	firsts := map[string]time.Time{}
	var order []string
	for i := 0; i < 6; i++ {
		at := recv(t, ctx, seen)
		if at.n != len(times[at.body])+1 {
			t.Fatalf("%s: attempt %d arrived as attempt %d", at.body, len(times[at.body])+1, at.n)
		}
		if at.queue != task || at.seq != int64(len(at.body)) {
			t.Errorf("%s attempt %d: queue %q, x-bench-seq %v", at.body, at.n, at.queue, at.seq)
		}
		if at.n > 1 && at.header != int32(at.n) {
			t.Errorf("%s attempt %d: x-attempt header %v (%T)", at.body, at.n, at.header, at.header)
		}
		if f, ok := firsts[at.body]; ok && !f.Equal(at.first) {
			t.Errorf("%s attempt %d: first published %v, was %v", at.body, at.n, at.first, f)
		}
		firsts[at.body] = at.first
		times[at.body] = append(times[at.body], at.at)
		order = append(order, at.body)
	}
	// The fast job's first retry (100ms), published after the slow job's 3s copy, must
	// not wait behind it.
	if !times["fast"][1].Before(times["slow"][1]) {
		t.Errorf("order = %v: the 3s retry blocked the 100ms one", order)
	}
	// Lower bounds are strict; upper bounds leave room for a loaded shared broker.
	check := func(name string, i int, want time.Duration) {
		got := times[name][i+1].Sub(times[name][i])
		if got < want-5*time.Millisecond || got > want+2*time.Second {
			t.Errorf("%s: delay before attempt %d = %v, want ~%v", name, i+2, got, want)
		}
	}
	check("fast", 0, 100*time.Millisecond)
	check("fast", 1, 200*time.Millisecond)
	check("fast", 2, 400*time.Millisecond)
	check("slow", 0, 3*time.Second)
	eventually(t, ctx, "2 acks, 4 failures, 4 retries", func() bool {
		s := w.Stats()
		return s.Acked == 2 && s.Retried == 4 && s.Failed == 4
	})
}

func TestCrashBetweenRetryPublishAndAck(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Retry = RetryPolicy{MaxAttempts: 5, MinDelay: 20 * time.Millisecond}
	a.deleteLater(queuesOf(task, cfg.Retry))

	var ks killSwitch
	cfg.Dial = ks.dial
	w, _ := New(cfg)
	var crashed atomic.Bool
	w.afterRetryPublish = func(j *Job) {
		if j.Attempt == 2 && crashed.CompareAndSwap(false, true) {
			ks.kill()
		}
	}
	type delivery struct {
		attempt     int
		redelivered bool
	}
	seen := make(chan delivery, 16)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		seen <- delivery{j.Attempt, j.Redelivered}
		if j.Attempt < 3 {
			return errBoom
		}
		return nil
	})
	start(t, w)
	if err := newPublisher(t, app).PublishTask(ctx, task, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var redeliveredAt2, success bool
	for !(redeliveredAt2 && success) {
		d := recv(t, ctx, seen)
		if d.redelivered {
			if d.attempt != 2 {
				t.Fatalf("redelivery after the crash is attempt %d, want 2 (count reset)", d.attempt)
			}
			redeliveredAt2 = true
		}
		success = success || d.attempt == 3
	}
	if s := w.Stats(); s.Reconnects < 1 {
		t.Errorf("stats = %+v, want a reconnect", s)
	}
	eventually(t, ctx, "ack of a third attempt", func() bool { return w.Stats().Acked >= 1 })
}

func TestInProcessRetry(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Retry = RetryPolicy{MaxAttempts: 3, MinDelay: 30 * time.Millisecond, Mode: RetryInProcess}
	a.deleteLater(append(queuesOf(task, cfg.Retry), task+".retry.30ms"))
	if q := RetryQueues(task, cfg.Retry); q != nil {
		t.Fatalf("RetryQueues(inprocess) = %v", q)
	}
	type attempt struct {
		n           int
		at          time.Time
		redelivered bool
	}
	seen := make(chan attempt, 4)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		seen <- attempt{j.Attempt, time.Now(), j.Redelivered}
		if j.Attempt < 3 {
			return errBoom
		}
		return nil
	})
	start(t, w)
	if err := w.PublishTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	var prev attempt
	for i := 1; i <= 3; i++ {
		at := recv(t, ctx, seen)
		if at.n != i || at.redelivered {
			t.Fatalf("attempt %d = %+v", i, at)
		}
		if i > 1 && at.at.Sub(prev.at) < 30*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one", i, at.at.Sub(prev.at))
		}
		prev = at
	}
	eventually(t, ctx, "ack", func() bool { return w.Stats().Acked == 1 })
	if s := w.Stats(); s.Retried != 2 {
		t.Errorf("stats = %+v", s)
	}
	if _, _, err := a.inspect(task + ".retry.30ms"); err == nil {
		t.Error("in-process mode declared a retry tier")
	}
}

// Issue 12, defect 6: with jitter, jobs that fail together must come back spread over
// [d/2, d]. A per-message TTL only expires at the head of a FIFO queue, so before, a
// job behind a longer delay waited for it and most came back together near d.
func TestJitteredDelaysAreHonest(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Prefetch, cfg.Concurrency = 40, 10
	cfg.Retry = RetryPolicy{MaxAttempts: 2, MinDelay: 400 * time.Millisecond, MaxDelay: 400 * time.Millisecond, Jitter: true}
	a.deleteLater(queuesOf(task, cfg.Retry))
	type event struct {
		id      string
		attempt int
		at      time.Time
	}
	events := make(chan event, 128)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		events <- event{j.ID, j.Attempt, time.Now()}
		if j.Attempt == 1 {
			return errBoom
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
	failed := map[string]time.Time{}
	var delays []time.Duration
	for len(delays) < n {
		e := recv(t, ctx, events)
		if e.attempt == 1 {
			failed[e.id] = e.at
			continue
		}
		delays = append(delays, e.at.Sub(failed[e.id]))
	}
	slices.Sort(delays)
	if delays[0] < 195*time.Millisecond {
		t.Errorf("delays %v: one came back before d/2 = 200ms", delays)
	}
	// Jitter over [200, 400] ms puts about 40 % (tiers 200, 237, 282 ms, even with
	// 18 ms of broker overhead) below 300 ms. A FIFO queue holding per-message
	// expirations returns each job at the running maximum of the expirations before
	// it: 8 below 300 ms needs the first 8 draws all below it (p = 0.4 %).
	if early := sort.Search(len(delays), func(i int) bool { return delays[i] >= 300*time.Millisecond }); early < 8 {
		t.Errorf("delays %v: only %d of %d below 300ms", delays, early, n)
	}
}
