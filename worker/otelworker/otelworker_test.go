package otelworker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/worker"
	"github.com/benchmq/bench/worker/otelworker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(brokertest.Main(m)) }

func TestSpansFollowTheJobs(t *testing.T) {
	url := brokertest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	app := "t" + hex.EncodeToString(b)
	first, second := app+".order.place", app+".order.ship"
	t.Cleanup(func() { deleteQueues(t, url, first, second) })

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())

	w, err := worker.New(worker.Config{URL: url, App: app, Prefetch: 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Retry: worker.RetryPolicy{MaxAttempts: 2, MinDelay: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Use(otelworker.Middleware(otelworker.WithTracerProvider(tp))); err != nil {
		t.Fatal(err)
	}
	shipped := make(chan string, 1)
	_ = w.HandleTask(first, func(ctx context.Context, j *worker.Job) error {
		if j.Attempt == 1 {
			return errors.New("warehouse busy")
		}
		return w.PublishTask(ctx, second, nil)
	})
	_ = w.HandleTask(second, func(ctx context.Context, j *worker.Job) error {
		shipped <- j.TID
		return nil
	})
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	select {
	case <-w.Ready():
	case <-ctx.Done():
		t.Fatal("worker not ready")
	}

	p, err := worker.NewPublisher(worker.PublisherConfig{URL: url, App: app})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reqCtx, req := tp.Tracer("test").Start(ctx, "http request")
	if err := p.PublishTask(otelworker.Inject(worker.WithTID(reqCtx, "tid-otel")), first, nil); err != nil {
		t.Fatal(err)
	}
	req.End()
	select {
	case tid := <-shipped:
		if tid != "tid-otel" {
			t.Errorf("TID = %q: tracing must not change it", tid)
		}
	case <-ctx.Done():
		t.Fatal("second task never ran")
	}
	stop()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v", err)
	}
	ran <- nil

	spans := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = append(spans[s.Name()], s)
	}
	places, ships := spans[first+" process"], spans[second+" process"]
	if len(places) != 2 || len(ships) != 1 {
		t.Fatalf("spans = %v", spans)
	}
	root := req.SpanContext()
	for i, s := range places {
		if s.Parent().SpanID() != root.SpanID() || s.SpanContext().TraceID() != root.TraceID() {
			t.Errorf("attempt %d span's parent %v, want the request span %v", i+1, s.Parent().SpanID(), root.SpanID())
		}
	}
	if places[0].Status().Code != codes.Error || places[1].Status().Code == codes.Error {
		t.Errorf("statuses %v, %v: want the failed first attempt marked", places[0].Status(), places[1].Status())
	}
	if ship := ships[0]; ship.Parent().SpanID() != places[1].SpanContext().SpanID() || ship.SpanContext().TraceID() != root.TraceID() {
		t.Errorf("the second task's span is not a child of the attempt that published it")
	}
	found := false
	for _, a := range ships[0].Attributes() {
		found = found || (a.Key == "bench.tid" && a.Value.AsString() == "tid-otel")
	}
	if !found {
		t.Errorf("span attributes %v lack bench.tid", ships[0].Attributes())
	}
}

func deleteQueues(t *testing.T, url string, queues ...string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Errorf("clean up: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, q := range queues {
		for _, name := range append([]string{q, worker.DeadQueue(q)}, worker.RetryQueues(q, worker.RetryPolicy{MaxAttempts: 2, MinDelay: 10 * time.Millisecond})...) {
			_, _ = ch.QueueDelete(name, false, false, false)
		}
	}
}
