package simworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/worker"
)

// Run runs one simulated worker process until ctx ends. With cfg.Telemetry
// set it reports to the runner the way any service built on the runtime
// does under bench: the runtime reports (worker/harness.go) once it finds
// the runner's address and this process's index in the environment, which
// Run puts there for it. The outcome of a job is then reported from where
// the runtime decides and acks it, so a success past the attempt's deadline
// is never reported, and the records of jobs finished together share one
// write.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.Telemetry != "" {
		err := errors.Join(os.Setenv(telemetry.EnvTelemetry, cfg.Telemetry),
			os.Setenv(telemetry.EnvWorkerIndex, strconv.Itoa(cfg.Worker)))
		if err != nil {
			return fmt.Errorf("set the runtime's report to bench: %w", err)
		}
	}
	w, err := worker.New(cfg.RuntimeConfig(log))
	if err != nil {
		return fmt.Errorf("configure worker: %w", err)
	}
	j := newJob(cfg, func(ctx context.Context, event string, body []byte) error {
		return w.PublishEvent(ctx, event, body)
	})
	opt := worker.WithRecovery(j.recover)
	if cfg.Task != "" {
		err = w.HandleTask(cfg.Task, j.handle, opt)
	} else {
		err = w.HandleEvent(cfg.Event, j.handle, opt)
	}
	if err != nil {
		return fmt.Errorf("register handler: %w", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	select {
	case <-w.Ready():
		log.Info("worker ready", "task", cfg.Task, "event", cfg.Event, "prefetch", cfg.Workers.Prefetch, "concurrency", cfg.Workers.Concurrency)
		err = <-runErr
	case err = <-runErr:
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run worker: %w", err)
	}
	return nil
}
