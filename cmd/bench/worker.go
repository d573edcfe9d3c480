package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/internal/simworker"
	"github.com/benchmq/bench/scenarios"
)

func cmdWorker(args []string) int { return workerMain(args, os.Stderr) }

// workerMain is `bench worker ARGS`: it runs until SIGINT or SIGTERM, then
// shuts the worker down gracefully.
func workerMain(args []string, stderr io.Writer) int {
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
	var cfg simworker.Config
	switch {
	case *configPath != "" && *scenarioPath == "":
		c, err := simworker.ReadConfig(*configPath)
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
		cfg = simworker.FromScenario(s)
		cfg.URL = s.Broker.URL
	default:
		fs.Usage()
		return exitInput
	}
	if env := os.Getenv("AMQP_URL"); env != "" {
		cfg.URL = env
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
	if err := simworker.Run(ctx, cfg, log); err != nil {
		log.Error("worker stopped", "err", redact.Error(err, cfg.URL))
		return exitEnv
	}
	return exitOK
}
