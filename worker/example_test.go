package worker_test

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/benchmq/bench/worker"
)

// A task worker: the billing app handles its own task billing.invoice.send.
func Example_taskWorker() {
	w, err := worker.New(worker.Config{
		URL:         "amqp://guest:guest@127.0.0.1:5672/",
		App:         "billing",
		Prefetch:    20,
		Concurrency: 8,
		Timeout:     5 * time.Second,
		Retry:       worker.RetryPolicy{MaxAttempts: 5, MinDelay: 200 * time.Millisecond, MaxDelay: 30 * time.Second, Jitter: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	type invoice struct{ ID string }
	err = w.HandleTask("billing.invoice.send", worker.JSON(func(ctx context.Context, job *worker.Job, inv invoice) error {
		worker.Logger(ctx).Info("sending invoice", "invoice", inv.ID)
		return nil // ack; an error retries with backoff
	}))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx); err != nil { // returns after a graceful shutdown
		log.Fatal(err)
	}
}

// An event subscriber that creates a task: the mail app listens to user.registered and
// schedules its own task; the task inherits the event's transaction ID.
func Example_eventSubscriber() {
	w, err := worker.New(worker.Config{URL: "amqp://guest:guest@127.0.0.1:5672/", App: "mail", Prefetch: 10})
	if err != nil {
		log.Fatal(err)
	}
	err = w.HandleEvent("user.registered", func(ctx context.Context, job *worker.Job) error {
		// Passing the handler's ctx carries job.TID into the new task.
		return w.PublishTask(ctx, "mail.welcome.send", job.Body)
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.HandleTask("mail.welcome.send", func(ctx context.Context, job *worker.Job) error {
		slog.Info("welcome mail", "tid", job.TID)
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// A recovery function: after the last attempt (or a permanent error) it marks the
// record failed; the job then goes to the dead-letter queue "api.card.charge.dead".
func Example_recovery() {
	w, err := worker.New(worker.Config{
		URL: "amqp://guest:guest@127.0.0.1:5672/", App: "api", Prefetch: 10,
		Retry: worker.RetryPolicy{MaxAttempts: 3},
	})
	if err != nil {
		log.Fatal(err)
	}
	errDeclined := errors.New("card declined")
	charge := func(ctx context.Context, job *worker.Job) error {
		if string(job.Body) == "" {
			return worker.Permanent(errDeclined) // no retries
		}
		return worker.RetryAfter(time.Second, errors.New("gateway busy"))
	}
	markFailed := func(ctx context.Context, job *worker.Job, cause error) error {
		worker.Logger(ctx).Error("charge failed for good", "attempts", job.Attempt, "err", cause)
		return nil // an error or panic here is logged; the job is dead-lettered anyway
	}
	if err := w.HandleTask("api.card.charge", charge, worker.WithRecovery(markFailed)); err != nil {
		log.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// A service that only publishes.
func ExamplePublisher() {
	p, err := worker.NewPublisher(worker.PublisherConfig{URL: "amqp://guest:guest@127.0.0.1:5672/", App: "api"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ctx := worker.WithTID(context.Background(), "request-42")
	if err := p.PublishEvent(ctx, "user.registered", []byte(`{"id":7}`)); err != nil {
		log.Fatal(err) // not confirmed: the caller decides what to do
	}
}
