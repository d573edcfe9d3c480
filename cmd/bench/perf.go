package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/perf"
	"github.com/benchmq/bench/internal/procstat"
)

// perfFlags are `bench perf`'s settings beyond perf.Config.
type perfFlags struct {
	amqpURL, erlArgs, jsonOut string
	managed, strict           bool
}

var perfCLI = cli{
	name:  "perf",
	usage: "[--managed] [--repeat N] [--messages N] [--peer BIN] [--only SECTION,...] [--json FILE]",
	about: `Measures the runtime and the load generator against raw amqp091-go (and the watermill-amqp
peer when --peer is given), side by side, interleaved and repeated: consume throughput per
prefetch, publish throughput, the spike's worker memory, the whole pipeline (bench run on a
no-op spike against a raw publish+consume pair), the load generator's accuracy at
steady rates, the ledger's bytes per job. Progress
goes to stderr, the tables to stdout. BENCHMARKS.md has the figures and the machine.`,
	examples: []string{
		"bench perf --managed",
		"bench perf --amqp-url amqp://guest:guest@127.0.0.1:5672/ --only consume --repeat 9",
		"bench perf --managed --peer bin/watermillpeer --json out/perf.json",
	},
	exits: exitsPerf,
}

// cmdPerf is `bench perf`: the harness against raw amqp091-go (and the watermill
// peer), side by side. `bench perf --child ...` is one of its consumer processes.
func cmdPerf(args []string, s stdio) int {
	if len(args) > 0 && args[0] == "--child" {
		return perf.ChildMain(args[1:], s.out, s.err)
	}
	cfg, pf, code := parsePerf(args, s)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	if pf.managed {
		closeNode, err := startPerfNode(ctx, &cfg, pf.erlArgs, s)
		if err != nil {
			fmt.Fprintln(s.err, "bench perf:", err)
			return exitEnv
		}
		defer closeNode()
	}
	rep, err := perf.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(s.err, "bench perf:", err)
		var ce *perf.ConfigError
		if errors.As(err, &ce) {
			return exitInput
		}
		return exitEnv
	}
	fmt.Println()
	if err := rep.Print(s.out); err != nil {
		fmt.Fprintln(s.err, "bench perf:", err)
		return exitEnv
	}
	fmt.Printf("\ntook %s\n", time.Since(began).Round(time.Second))
	if pf.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(pf.jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(s.err, "bench perf: write json:", err)
			return exitEnv
		}
	}
	if pf.strict && len(rep.Missed()) > 0 {
		return exitGate
	}
	return exitOK
}

// parsePerf reads the flags into a perf.Config; code is an exit code when the
// command must end here, -1 otherwise.
func parsePerf(args []string, s stdio) (cfg perf.Config, pf perfFlags, code int) {
	fs := perfCLI.flags()
	fs.StringVar(&pf.amqpURL, "amqp-url", "", "broker to measure against (default $AMQP_URL, then "+perf.DefaultURL+")")
	fs.BoolVar(&pf.managed, "managed", false, "measure against a private rabbitmq-server node started for the run (see --erl-args); its CPU per message is reported too")
	fs.StringVar(&pf.erlArgs, "erl-args", perf.DefaultErlArgs, "Erlang VM arguments of the --managed node")
	fs.IntVar(&cfg.Repeat, "repeat", perf.DefaultRepeat, "measure every figure N times, interleaved")
	fs.Int64Var(&cfg.Messages, "messages", perf.DefaultMessages, "messages per consume and per publish run")
	fs.IntVar(&cfg.PublishRounds, "publish-rounds", perf.DefaultPublishRounds, "publish runs per implementation and repetition")
	fs.IntVar(&cfg.Size, "size", perf.DefaultSize, "body size in bytes of consumed and published messages")
	fs.IntSliceVar(&cfg.Prefetches, "prefetch", perf.DefaultPrefetches(), "consume prefetch counts (each with concurrency 1 and = prefetch)")
	fs.Int64Var(&cfg.SpikeJobs, "spike-jobs", perf.DefaultSpikeJobs, "jobs waiting in the memory spike")
	fs.IntVar(&cfg.SpikeSize, "spike-size", perf.DefaultSpikeSize, "body size in bytes of the spike's jobs")
	fs.DurationVar(&cfg.SpikeWork, "spike-work", perf.DefaultSpikeWork, "handler sleep per spike job")
	fs.Int64Var(&cfg.PipelineJobs, "pipeline-jobs", perf.DefaultPipelineJobs, "no-op jobs in the whole-pipeline spike (bench run against the raw publish+consume pair)")
	fs.IntVar(&cfg.PipelineConcurrency, "pipeline-concurrency", perf.DefaultPipelineConcurrency, "handler goroutines of the pipeline's worker process (and of the raw pair's consumer)")
	fs.IntVar(&cfg.PipelinePrefetch, "pipeline-prefetch", perf.DefaultPipelinePrefetch, "prefetch of the pipeline's worker process (and of the raw pair's consumer)")
	fs.Float64SliceVar(&cfg.AccuracyRates, "accuracy-rates", perf.DefaultAccuracyRates(), "steady rates (jobs/s) at which the load generator's lateness is measured")
	fs.DurationVar(&cfg.AccuracyFor, "accuracy-for", perf.DefaultAccuracyFor, "how long each accuracy rate runs")
	fs.Int64Var(&cfg.LedgerJobs, "ledger-jobs", perf.DefaultLedgerJobs, "jobs in the ledger memory measurement")
	fs.StringSliceVar(&cfg.Only, "only", nil, fmt.Sprintf("run only these sections %v", perf.Sections()))
	fs.StringVar(&cfg.Peer, "peer", "", "watermill-amqp peer binary (build: cd internal/perf/watermillpeer && go build); empty = leave watermill out")
	fs.StringVar(&pf.jsonOut, "json", "", "also write the figures as JSON to this file")
	fs.StringVar(&cfg.ProfileDir, "profile", "", "write CPU and allocation profiles of every consumer child to this directory (slows them: not for comparing)")
	fs.BoolVar(&pf.strict, "strict", false, "exit 1 when a target is missed")
	if code, done := perfCLI.parse(fs, args, s); done {
		return cfg, pf, code
	}
	if !perfCLI.args(fs, 0, 0, s) {
		return cfg, pf, exitInput
	}
	if pf.managed && pf.amqpURL != "" {
		return cfg, pf, perfCLI.fail(s, "--managed and --amqp-url exclude each other")
	}
	if cfg.Repeat < 1 || cfg.PublishRounds < 1 || cfg.Messages < 2 || cfg.SpikeJobs < 2 || cfg.LedgerJobs < 1 ||
		cfg.PipelineJobs < 2 || cfg.PipelineConcurrency < 1 || cfg.PipelinePrefetch < 1 {
		// Zero would mean "the default" to perf.Config; on the command line it is a mistake.
		return cfg, pf, perfCLI.fail(s, "--repeat, --publish-rounds, --ledger-jobs, --pipeline-concurrency and --pipeline-prefetch must be at least 1, --messages, --spike-jobs and --pipeline-jobs at least 2")
	}
	cfg.URL = pf.amqpURL
	if cfg.URL == "" {
		cfg.URL = os.Getenv(broker.EnvURL)
	}
	if cfg.URL == "" {
		cfg.URL = perf.DefaultURL
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(s.err, "bench perf: find own executable:", err)
		return cfg, pf, exitEnv
	}
	cfg.Child = func(a []string) *exec.Cmd { return exec.Command(self, append([]string{"perf", "--child"}, a...)...) }
	cfg.Bench = func(a []string) *exec.Cmd { return exec.Command(self, a...) }
	cfg.Progress = s.err
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			fmt.Fprintln(s.err, "bench perf:", err)
			return cfg, pf, exitEnv
		}
		if cfg.ProfileDir, err = filepath.Abs(cfg.ProfileDir); err != nil {
			fmt.Fprintln(s.err, "bench perf:", err)
			return cfg, pf, exitEnv
		}
	}
	return cfg, pf, -1
}

// startPerfNode starts the private node of --managed and points cfg at it.
func startPerfNode(ctx context.Context, cfg *perf.Config, erlArgs string, s stdio) (func(), error) {
	fmt.Fprintf(s.err, "starting a private rabbitmq-server node (Erlang VM args %q)...\n", erlArgs)
	m, err := broker.StartManaged(ctx, broker.ManagedConfig{ErlArgs: erlArgs})
	if err != nil {
		return nil, err
	}
	cfg.URL = m.URL()
	cfg.BrokerCPU = func() (time.Duration, error) {
		pid := m.PID()
		if pid == 0 {
			return 0, errors.New("the private node is not running")
		}
		return procstat.CPU(pid)
	}
	cfg.BrokerNote = fmt.Sprintf("a private node on this machine started by bench perf --managed, Erlang VM args %q", erlArgs)
	return func() {
		if err := m.Close(context.Background()); err != nil {
			fmt.Fprintln(s.err, "bench perf: stop the private node:", err)
		}
	}, nil
}
