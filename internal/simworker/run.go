package simworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/benchmq/bench/internal/procstat"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/worker"
)

// Run runs one simulated worker process until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	var tel *telemetry.Client
	if cfg.Telemetry != "" {
		host, _ := os.Hostname()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := telemetry.Dial(dctx, cfg.Telemetry, telemetry.Hello{Worker: cfg.Worker, PID: os.Getpid(), Host: host})
		cancel()
		if err != nil {
			return err
		}
		tel = c
		defer tel.Close()
	}
	w, err := worker.New(cfg.RuntimeConfig(log))
	if err != nil {
		return fmt.Errorf("configure worker: %w", err)
	}
	var rep reporter
	if tel != nil {
		rep = tel
	}
	j := newJob(cfg, rep, func(ctx context.Context, event string, body []byte) error {
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

	interval := cfg.StatsInterval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	ready := w.Ready()
	for {
		select {
		case err := <-runErr:
			if tel != nil {
				_ = tel.Stats(j.stats(cfg.Worker, w.Stats()))
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("run worker: %w", err)
			}
			return nil
		case <-ready:
			ready = nil
			log.Info("worker ready", "task", cfg.Task, "event", cfg.Event, "prefetch", cfg.Workers.Prefetch, "concurrency", cfg.Workers.Concurrency)
			if tel != nil {
				if err := tel.Ready(); err != nil {
					log.Error("report ready", "err", err)
				}
			}
		case <-tick.C:
			if tel != nil {
				if err := tel.Stats(j.stats(cfg.Worker, w.Stats())); err != nil {
					log.Error("report stats", "err", err)
				}
			}
		}
	}
}

func (j *job) stats(id int, s worker.Stats) telemetry.Stats {
	rss, _ := procstat.RSS(0)
	heapSample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(heapSample)
	var heap int64
	if heapSample[0].Value.Kind() == metrics.KindUint64 {
		heap = int64(heapSample[0].Value.Uint64())
	}
	return telemetry.Stats{
		Worker:         id,
		RSSBytes:       rss,
		HeapBytes:      heap,
		Goroutines:     runtime.NumGoroutine(),
		InFlight:       int64(s.InFlight),
		Started:        int64(s.Started),
		Acked:          int64(s.Acked),
		Failed:         int64(s.Failed),
		Retried:        int64(s.Retried),
		Recovered:      int64(s.Recovered),
		DeadLettered:   int64(s.DeadLettered),
		Reconnects:     int64(s.Reconnects),
		BreakerState:   s.BreakerState,
		BreakerOpened:  int64(s.BreakerOpened),
		BreakerOpenSec: s.BreakerOpenTime.Seconds(),
		ConsumerActive: s.ConsumerActive,
		Blocked:        s.Blocked,
		DepCalls:       j.depCalls.Load(),
		DepErrors:      j.depErrors.Load(),
	}
}
