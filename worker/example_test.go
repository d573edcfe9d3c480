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

// Middleware sees every attempt of every handler: here it logs each attempt's outcome
// and duration. WithMiddleware adds middleware to one handler only.
func ExampleWorker_Use() {
	w, err := worker.New(worker.Config{URL: "amqp://guest:guest@127.0.0.1:5672/", App: "billing", Prefetch: 10})
	if err != nil {
		log.Fatal(err)
	}
	timing := func(next worker.HandlerFunc) worker.HandlerFunc {
		return func(ctx context.Context, job *worker.Job) error {
			began := time.Now()
			err := next(ctx, job) // the runtime still retries, times out and recovers
			worker.Logger(ctx).Info("attempt done", "took", time.Since(began), "err", err)
			return err
		}
	}
	if err := w.Use(timing); err != nil { // before Run
		log.Fatal(err)
	}
	if err := w.HandleTask("billing.invoice.send", func(ctx context.Context, job *worker.Job) error {
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// Handler options override the worker's settings for one task: a slow export gets a
// longer timeout, fewer goroutines, a rate limit of its own and no retries.
func ExampleWithRetry() {
	w, err := worker.New(worker.Config{
		URL: "amqp://guest:guest@127.0.0.1:5672/", App: "report", Prefetch: 20, Concurrency: 8,
		Timeout: 5 * time.Second,
		Retry:   worker.RetryPolicy{MaxAttempts: 5, MinDelay: 200 * time.Millisecond, MaxDelay: 30 * time.Second, Jitter: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	export := func(ctx context.Context, job *worker.Job) error { return nil }
	err = w.HandleTask("report.month.export", export,
		worker.WithRetry(worker.RetryPolicy{MaxAttempts: 1}),
		worker.WithTimeout(2*time.Minute),
		worker.WithConcurrency(2),
		worker.WithRateLimit(1, 1), // one export started per second
	)
	if err != nil {
		log.Fatal(err) // a *worker.ConfigError: nothing was connected yet
	}
	if err := w.Run(context.Background()); err != nil {
		var ce *worker.ConfigError
		if errors.As(err, &ce) {
			log.Fatalf("the broker refused the configuration: %v", err) // not retried
		}
		log.Fatal(err)
	}
}

// A delayed task: the reminder enters billing.invoice.remind in three days. The
// delay is rounded up to two significant digits.
func ExampleAfter() {
	p, err := worker.NewPublisher(worker.PublisherConfig{URL: "amqp://guest:guest@127.0.0.1:5672/", App: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if err := p.PublishTask(ctx, "billing.invoice.remind", []byte(`{"invoice":42}`), worker.After(72*time.Hour)); err != nil {
		log.Fatal(err)
	}
}

// Replaying dead letters once their cause is fixed: every dead letter of
// billing.invoice.send goes back into its queue with its ID and TID, its attempts
// counted from 1 again. `bench dlq replay billing.invoice.send` does the same.
func ExampleDeadLetters_Replay() {
	ctx := context.Background()
	q, err := worker.OpenDeadLetters(ctx, worker.DeadLetterConfig{
		URL: "amqp://guest:guest@127.0.0.1:5672/", Queue: "billing.invoice.send",
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, worker.ErrNoDeadQueue) when there is none
	}
	defer q.Close()
	dead, err := q.Peek(ctx, 10) // look without taking
	if err != nil {
		log.Fatal(err)
	}
	for _, dl := range dead {
		log.Printf("%s (tid %s) died after %d attempts: %s", dl.ID, dl.TID, dl.Attempts, dl.Error)
	}
	n, err := q.Replay(ctx, worker.ReplayOptions{}) // all that are there now
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("replayed %d jobs", n)
}
