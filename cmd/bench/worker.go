package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/internal/simworker"
	"github.com/benchmq/bench/scenarios"
)

var workerCLI = cli{
	name:  "worker",
	usage: "--config FILE.json | --scenario FILE.yaml [--amqp-url URL] [--set key=value]...",
	about: `Runs one simulated worker process: the runtime consuming the scenario's task or event with
the scenario's simulated job. 'bench run' spawns these with --config (the broker URL comes in
$AMQP_URL, never in the file); by hand, --scenario runs a scenario's worker against a broker.
It runs until SIGINT or SIGTERM, then shuts down gracefully.`,
	examples: []string{
		"bench worker --scenario scenarios/spike.yaml --set workers.prefetch=50 --verbose",
		"# the broker from the environment, as bench run hands it over:",
		"AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ bench worker --scenario scenarios/steady.yaml",
	},
	exits: "0 stopped gracefully\n2 bad input: flags, config, scenario\n3 the worker failed (broker gone for good, ...)",
}

func cmdWorker(args []string, s stdio) int { return workerMain(args, s.out, s.err) }

// workerMain is `bench worker ARGS`: it runs until SIGINT or SIGTERM, then
// shuts the worker down gracefully.
func workerMain(args []string, stdout, stderr io.Writer) int {
	s := stdio{out: stdout, err: stderr}
	fs := workerCLI.flags()
	configPath := fs.String("config", "", "worker config JSON written by bench run")
	scenarioPath := fs.String("scenario", "", "run the simulated job of this scenario file (by hand)")
	url := fs.String("amqp-url", "", "AMQP URL (default $AMQP_URL, then the scenario's broker.url)")
	sets := fs.StringArray("set", nil, "override a scenario key: key=value (repeatable)")
	tel := fs.String("telemetry", "", "runner telemetry address host:port (optional)")
	id := fs.Int("worker", -1, "index of this worker process (for telemetry)")
	depURL := fs.String("dependency-url", "", "base URL of the simulated dependency")
	verbose := fs.Bool("verbose", false, "log at debug level")
	if code, done := workerCLI.parse(fs, args, s); done {
		return code
	}
	if !workerCLI.args(fs, 0, 0, s) {
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
		return workerCLI.fail(s, "give one of --config and --scenario")
	}
	if env := os.Getenv("AMQP_URL"); env != "" {
		cfg.URL = env
	}
	cfg.URLs = simworker.SplitURLs(os.Getenv("AMQP_URLS"))
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
