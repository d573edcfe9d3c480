package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestTaskRoundTrip(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
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

func TestRetryTiersDelaysAndNoHeadOfLineBlocking(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 30*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
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

func TestRecoveryAndDeadLetter(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task, typed := app+".job.run", app+".job.typed"
	cfg := baseConfig(app)
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

func TestCrashBetweenRetryPublishAndAck(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
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

func TestEventRetryIsSeenByOneSubscriberOnly(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	appA, appB := uniq(t), uniq(t)
	event := uniq(t) + ".created"
	cfg := baseConfig(appA)
	a.deleteLater(append(queuesOf(EventQueue(appA, event), cfg.Retry), queuesOf(EventQueue(appB, event), cfg.Retry)...), event)

	wa, _ := New(cfg)
	aDone := make(chan *Job, 4)
	_ = wa.HandleEvent(event, func(ctx context.Context, j *Job) error {
		if string(j.Body) == "e" && j.Attempt == 1 {
			return errBoom
		}
		aDone <- j
		return nil
	})
	cfgB := baseConfig(appB)
	cfgB.Concurrency = 1 // B handles its queue in order
	wb, _ := New(cfgB)
	bSeen := make(chan string, 8)
	_ = wb.HandleEvent(event, func(ctx context.Context, j *Job) error {
		bSeen <- string(j.Body)
		return nil
	})
	start(t, wa)
	start(t, wb)
	p := newPublisher(t, appA)
	if err := p.PublishEvent(ctx, event, []byte("e")); err != nil {
		t.Fatal(err)
	}
	j := recv(t, ctx, aDone)
	if string(j.Body) != "e" || j.Attempt != 2 || j.Queue != EventQueue(appA, event) {
		t.Errorf("A's retry = %q attempt %d from %q", j.Body, j.Attempt, j.Queue)
	}
	// A retry copy leaking to B would be in B's queue by now, ahead of the sentinel.
	if err := p.PublishEvent(ctx, event, []byte("sentinel")); err != nil {
		t.Fatal(err)
	}
	if got := []string{recv(t, ctx, bSeen), recv(t, ctx, bSeen)}; got[0] != "e" || got[1] != "sentinel" {
		t.Errorf("B saw %v, want [e sentinel]: a retry for A reached B", got)
	}
	if j := recv(t, ctx, aDone); string(j.Body) != "sentinel" {
		t.Errorf("A saw %q", j.Body)
	}
}

func TestBreakerCancelsConsumerAndResumes(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 25*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
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
	cfg := baseConfig(app)
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

func TestTIDSurvivesTaskEventTask(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	first, second, event := app+".order.place", app+".order.ship", app+".placed"
	cfg := baseConfig(app)
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
