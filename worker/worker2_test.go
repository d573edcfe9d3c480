package worker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestTimeoutIsFreshPerAttemptAndRetriable(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
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

func TestRateLimit(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
	cfg.RateLimit, cfg.Burst, cfg.Concurrency = 20, 1, 4
	a.deleteLater(queuesOf(task, cfg.Retry))
	starts := make(chan time.Time, 8)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		starts <- time.Now()
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	const n = 6
	for range n {
		if err := p.PublishTask(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
	}
	first := recv(t, ctx, starts)
	var last time.Time
	for range n - 1 {
		last = recv(t, ctx, starts)
	}
	// 20/s with a burst of 1: at least 5 × 50ms between the first and the sixth start.
	if span := last.Sub(first); span < 200*time.Millisecond {
		t.Errorf("%d jobs started within %v at 20/s", n, span)
	}
}

func TestPrefetchAndConcurrencyAreSeparate(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
	cfg.Prefetch, cfg.Concurrency = 3, 2
	a.deleteLater(queuesOf(task, cfg.Retry))
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	var cur, peak atomic.Int32
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		started <- struct{}{}
		<-release
		cur.Add(-1)
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	const n = 8
	for range n {
		if err := p.PublishTask(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, ctx, started)
	recv(t, ctx, started)
	// Two handlers run, one more message sits in the prefetch buffer, five stay ready.
	eventually(t, ctx, "5 ready messages", func() bool {
		ready, _, err := a.inspect(task)
		return err == nil && ready == n-3
	})
	if s := w.Stats(); s.InFlight != 2 {
		t.Errorf("in flight = %d, want 2", s.InFlight)
	}
	close(release)
	eventually(t, ctx, "all acked", func() bool { return w.Stats().Acked == n })
	if peak.Load() != 2 {
		t.Errorf("peak concurrency = %d, want 2", peak.Load())
	}
}

func TestReconnectAfterConnectionLoss(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
	var ks killSwitch
	cfg.Dial = ks.dial
	a.deleteLater(queuesOf(task, cfg.Retry))
	type delivery struct {
		body        string
		redelivered bool
	}
	seen := make(chan delivery, 8)
	hold := make(chan struct{})
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		seen <- delivery{string(j.Body), j.Redelivered}
		if string(j.Body) == "held" && !j.Redelivered {
			<-hold // in flight while the connection dies; its ack will fail
		}
		return nil
	})
	start(t, w)
	if err := w.PublishTask(ctx, task, []byte("held")); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ctx, seen); d.redelivered {
		t.Fatal("first delivery flagged redelivered")
	}
	ks.kill()
	eventually(t, ctx, "a reconnect", func() bool { return w.Stats().Reconnects == 1 && w.Stats().ConsumerActive })
	close(hold)
	if d := recv(t, ctx, seen); d.body != "held" || !d.redelivered {
		t.Errorf("after reconnect got %+v, want the held job redelivered", d)
	}
	// Topology, QoS and consumers are back: a new job flows.
	if err := w.PublishTask(ctx, task, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ctx, seen); d.body != "after" {
		t.Errorf("got %+v", d)
	}
}

func TestGracefulShutdown(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
	cfg.Prefetch, cfg.Concurrency = 4, 2
	cfg.ShutdownTimeout = 300 * time.Millisecond
	a.deleteLater(queuesOf(task, cfg.Retry))
	started := make(chan string, 8)
	finishQuick := make(chan struct{})
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		started <- string(j.Body)
		if string(j.Body) == "quick" {
			<-finishQuick
			return nil
		}
		<-ctx.Done() // ignores the drain until its context is cancelled
		return ctx.Err()
	})
	r := start(t, w)
	p := newPublisher(t, app)
	for _, b := range []string{"quick", "stuck", "buffered", "buffered"} {
		if err := p.PublishTask(ctx, task, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{recv(t, ctx, started): true, recv(t, ctx, started): true}
	if !got["quick"] || !got["stuck"] {
		t.Fatalf("started %v", got)
	}
	eventually(t, ctx, "all prefetched", func() bool { ready, _, _ := a.inspect(task); return ready == 0 })
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop(t) }()
	eventually(t, ctx, "intake stopped", func() bool { return !w.Stats().ConsumerActive })
	close(finishQuick)
	began := time.Now()
	if err := recv(t, ctx, stopped); err != nil {
		t.Errorf("Run = %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("shutdown took %v with a 300ms drain", d)
	}
	s := w.Stats()
	if s.Acked != 1 || s.Failed != 0 || s.Retried != 0 || s.InFlight != 0 {
		t.Errorf("stats = %+v: want quick acked and the rest requeued uncharged", s)
	}
	ready, consumers, err := a.inspect(task)
	if err != nil || ready != 3 || consumers != 0 {
		t.Errorf("queue after shutdown: ready %d consumers %d err %v, want 3 requeued", ready, consumers, err)
	}
	if err := w.PublishTask(ctx, task, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("PublishTask after Run = %v, want ErrClosed", err)
	}
}

func TestInProcessRetry(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
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

func TestUnconfirmedPublishIsAnError(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 10*time.Second)
	app := uniq(t)
	task := app + ".job.full"
	a.deleteLater([]string{task})
	if _, err := a.channel().QueueDeclare(task, true, false, false, false, amqp.Table{
		"x-max-length": int32(0), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, app)
	if err := p.PublishTask(ctx, task, []byte("x")); !errors.Is(err, ErrNacked) {
		t.Errorf("publish to a full reject-publish queue = %v, want ErrNacked", err)
	}
	// A task queue that does not exist yet is declared rather than dropped silently.
	fresh := app + ".job.fresh"
	a.deleteLater([]string{fresh})
	if err := p.PublishTask(ctx, fresh, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if ready, _, err := a.inspect(fresh); err != nil || ready != 1 {
		t.Errorf("fresh queue: ready %d, err %v", ready, err)
	}
	_ = p.Close()
	if err := p.PublishTask(ctx, fresh, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after Close = %v", err)
	}
}

func TestCollector(t *testing.T) {
	w, err := New(Config{URL: brokerURL(), App: "bench", Prefetch: 1, Breaker: BreakerConfig{Enabled: true}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	w.stats.acked.Add(3)
	w.stats.consumers.Add(1)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(w)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" {
					name += "{" + l.GetValue() + "}"
				}
			}
			got[name] = v
		}
	}
	for name, want := range map[string]float64{
		"bench_worker_jobs_acked_total":        3,
		"bench_worker_consumer_active":         1,
		"bench_worker_jobs_in_flight":          0,
		"bench_worker_breaker_state{disabled}": 1, // Run has not built the breaker yet
		"bench_worker_breaker_state{open}":     0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if len(got) != 17 {
		t.Errorf("gathered %d series, want 17", len(got))
	}
}

func TestQuorumQueue(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(app)
	cfg.QueueType = QueueQuorum
	a.deleteLater(queuesOf(task, cfg.Retry))
	done := make(chan int, 2)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if j.Attempt == 1 {
			return errBoom
		}
		done <- j.Attempt
		return nil
	})
	start(t, w)
	if err := w.PublishTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, ctx, done); n != 2 {
		t.Errorf("attempt %d", n)
	}
	// Redeclaring as classic must fail: the queue really is a quorum queue.
	ch, err := a.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(task, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err == nil {
		t.Error("the job queue is not a quorum queue")
	}
}

func TestPrefetchZeroWarns(t *testing.T) {
	var buf bytes.Buffer
	_, err := New(Config{URL: brokerURL(), App: "bench", Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "prefetch 0") {
		t.Errorf("log = %q, want a prefetch warning", buf.String())
	}
}

func TestPublisherReconnectsAndNeverDropsSilently(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	a.deleteLater([]string{task})
	var ks killSwitch
	p, err := NewPublisher(PublisherConfig{URL: brokerURL(), App: app, Dial: ks.dial, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	confirmed, failed := 0, 0
	for i := range 6 {
		if i == 3 {
			ks.kill()
		}
		if err := p.PublishTask(ctx, task, []byte("x")); err != nil {
			failed++
			continue
		}
		confirmed++
	}
	if confirmed < 5 || failed > 1 {
		t.Errorf("confirmed %d, failed %d: the publisher did not reconnect", confirmed, failed)
	}
	// Every confirmed publish is in the queue.
	eventually(t, ctx, "confirmed messages stored", func() bool {
		ready, _, err := a.inspect(task)
		return err == nil && ready == confirmed
	})
}
