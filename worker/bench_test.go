package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
	amqp "github.com/rabbitmq/amqp091-go"
)

const benchPrefetch, benchConcurrency = 256, 4

// fill publishes n small persistent messages to a fresh queue and waits until all are
// stored, so that the timed part measures consuming only.
func fill(b *testing.B, a *admin, queue string, n int) {
	b.Helper()
	ctx := testCtx(b, 2*time.Minute)
	if _, err := a.channel().QueueDeclare(queue, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 64)
	for i := range n {
		msg := amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: "m", Body: body,
			Headers: amqp.Table{HeaderTID: "tid", HeaderAttempt: int32(1), "x-bench-seq": int64(i)}}
		if err := a.channel().PublishWithContext(ctx, "", queue, false, false, msg); err != nil {
			b.Fatal(err)
		}
	}
	eventually(b, ctx, "filled queue", func() bool {
		ready, _, err := a.inspect(queue)
		return err == nil && ready == n
	})
}

// BenchmarkConsumeNoop measures the runtime's consume path with a handler that does
// nothing: receive, run, ack.
func BenchmarkConsumeNoop(b *testing.B) {
	a := newAdmin(b)
	app := uniq(b)
	task := app + ".job.noop"
	cfg := baseConfig(b, app)
	cfg.Prefetch, cfg.Concurrency = benchPrefetch, benchConcurrency
	a.deleteLater(queuesOf(task, cfg.Retry))
	fill(b, a, task, b.N)

	var n atomic.Int64
	all := make(chan struct{})
	w, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if n.Add(1) == int64(b.N) {
			close(all)
		}
		return nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	began := time.Now()
	r := start(b, w)
	ctx := testCtx(b, 2*time.Minute)
	recv(b, ctx, all)
	eventually(b, ctx, "acks", func() bool { return w.Stats().Acked == uint64(b.N) })
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	_ = r.stop(b)
}

// BenchmarkConsumeRaw is the baseline: a bare amqp091-go consumer with the same
// prefetch and goroutine count, acking each delivery.
func BenchmarkConsumeRaw(b *testing.B) {
	a := newAdmin(b)
	queue := uniq(b) + ".raw.noop"
	a.deleteLater([]string{queue})
	fill(b, a, queue, b.N)

	b.ReportAllocs()
	b.ResetTimer()
	began := time.Now()
	conn, err := amqp.Dial(brokertest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Qos(benchPrefetch, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	all := make(chan struct{})
	var wg sync.WaitGroup
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range deliveries {
				_ = d.Ack(false)
				if n.Add(1) == int64(b.N) {
					close(all)
				}
			}
		}()
	}
	recv(b, testCtx(b, 2*time.Minute), all)
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	_ = conn.Close()
	wg.Wait()
}

// nopAck acknowledges without a broker, so BenchmarkHandle measures the runtime's own
// work per delivery: the Job, the counters, the handler call, the outcome.
type nopAck struct{ acks atomic.Int64 }

func (a *nopAck) Ack(uint64, bool) error          { a.acks.Add(1); return nil }
func (a *nopAck) Nack(uint64, bool, bool) error   { return nil }
func (a *nopAck) Reject(tag uint64, _ bool) error { return nil }

// handleFixture is a worker ready to handle deliveries in-process: no connection.
func handleFixture(tb testing.TB, cfg Config, fn HandlerFunc, opts ...HandlerOption) (*Worker, *handler) {
	tb.Helper()
	w, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.HandleTask(cfg.App+".job.noop", fn, opts...); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	w.stopCtx, w.hardCtx = ctx, ctx
	h := w.handlers[0]
	h.call = wrap(h.fn, w.middleware, h.middleware)
	return w, h
}

// BenchmarkHandle is one delivery through the runtime with a no-op handler, minus
// the broker and amqp091-go: what the runtime adds to a raw consume loop.
func BenchmarkHandle(b *testing.B) {
	w, h := handleFixture(b, Config{URL: "amqp://localhost/", App: "bench", Logger: quietLogger()},
		func(context.Context, *Job) error { return nil })
	ack := &nopAck{}
	d := amqp.Delivery{Acknowledger: ack, MessageId: "m", Body: make([]byte, 100),
		Headers: amqp.Table{HeaderTID: "tid", HeaderAttempt: int32(1), HeaderFirstPublished: int64(1)}}
	b.ReportAllocs()
	for b.Loop() {
		w.handle(nil, h, &d)
	}
	if ack.acks.Load() == 0 {
		b.Fatal("no delivery was acked")
	}
}

// BenchmarkHandleTimeout is BenchmarkHandle with a per-attempt timeout: the handler
// then runs in a goroutine of its own so that its deadline is enforced.
func BenchmarkHandleTimeout(b *testing.B) {
	w, h := handleFixture(b, Config{URL: "amqp://localhost/", App: "bench", Timeout: time.Minute, Logger: quietLogger()},
		func(context.Context, *Job) error { return nil })
	ack := &nopAck{}
	d := amqp.Delivery{Acknowledger: ack, MessageId: "m", Body: make([]byte, 100),
		Headers: amqp.Table{HeaderTID: "tid", HeaderAttempt: int32(1), HeaderFirstPublished: int64(1)}}
	b.ReportAllocs()
	for b.Loop() {
		w.handle(nil, h, &d)
	}
	if ack.acks.Load() == 0 {
		b.Fatal("no delivery was acked")
	}
}

// BenchmarkPublisherPublishTask is one confirmed task publish at a time through a
// Publisher: what a retry, a dead letter or a service's publish costs, broker included.
func BenchmarkPublisherPublishTask(b *testing.B) {
	a := newAdmin(b)
	app := uniq(b)
	task := app + ".job.pub"
	a.deleteLater([]string{task, DeadQueue(task)})
	p := newPublisher(b, app)
	ctx := testCtx(b, 5*time.Minute)
	body := make([]byte, 100)
	if err := p.PublishTask(ctx, task, body); err != nil { // connect and declare
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.PublishTask(ctx, task, body); err != nil {
			b.Fatal(err)
		}
	}
}
