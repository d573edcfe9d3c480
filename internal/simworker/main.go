package simworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/internal/procstat"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/worker"
)

// Exit codes, as the CLI's.
const (
	exitOK    = 0
	exitInput = 2
	exitEnv   = 3
)

// Main is `bench worker ARGS`. It runs until SIGINT or SIGTERM, then shuts the
// worker down gracefully.
func Main(args []string, stderr io.Writer) int {
	fs := pflag.NewFlagSet("bench worker", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "worker config JSON written by `bench run`")
	scenarioPath := fs.String("scenario", "", "run the simulated job of this scenario file (by hand)")
	url := fs.String("amqp-url", "", "AMQP URL (default $AMQP_URL, then the scenario's broker.url)")
	sets := fs.StringArray("set", nil, "override a scenario key: key=value (repeatable)")
	tel := fs.String("telemetry", "", "runner telemetry address host:port (optional)")
	id := fs.Int("worker", -1, "index of this worker process (for telemetry)")
	depURL := fs.String("dependency-url", "", "base URL of the simulated dependency")
	verbose := fs.Bool("verbose", false, "log at debug level")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench worker --config FILE.json | --scenario FILE.yaml [--amqp-url URL] [--set key=value]...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitInput
	}
	var cfg Config
	switch {
	case *configPath != "" && *scenarioPath == "":
		c, err := ReadConfig(*configPath)
		if err != nil {
			fmt.Fprintln(stderr, "bench worker:", err)
			return exitInput
		}
		cfg = c
	case *scenarioPath != "" && *configPath == "":
		s, err := scenarios.Load(*scenarioPath, *sets)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitInput
		}
		cfg = FromScenario(s)
		cfg.URL = s.Broker.URL
		if env := os.Getenv("AMQP_URL"); env != "" {
			cfg.URL = env
		}
	default:
		fs.Usage()
		return exitInput
	}
	if *url != "" {
		cfg.URL = *url
	}
	if *tel != "" {
		cfg.Telemetry = *tel
	}
	if *id >= 0 {
		cfg.Worker = *id
	}
	if *depURL != "" {
		cfg.DependencyURL = *depURL
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "bench worker:", err)
		return exitInput
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("worker", cfg.Worker)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("worker stopped", "err", redact.Error(err, cfg.URL))
		return exitEnv
	}
	return exitOK
}

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
	wcfg := worker.Config{
		URL:         cfg.URL,
		App:         cfg.App,
		Prefetch:    cfg.Prefetch,
		Concurrency: cfg.Concurrency,
		Timeout:     cfg.Timeout,
		RateLimit:   cfg.RateLimit,
		QueueType:   cfg.QueueType,
		Logger:      log,
		Retry:       cfg.RetryPolicy(),
		Breaker: worker.BreakerConfig{
			Enabled:      cfg.Breaker.Enabled,
			FailureRatio: cfg.Breaker.FailureRatio,
			MinRequests:  cfg.Breaker.MinRequests,
			OpenFor:      cfg.Breaker.OpenFor,
		},
		ShutdownTimeout: cfg.ShutdownAfter,
	}
	w, err := worker.New(wcfg)
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
			log.Info("worker ready", "task", cfg.Task, "event", cfg.Event, "prefetch", cfg.Prefetch, "concurrency", cfg.Concurrency)
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
