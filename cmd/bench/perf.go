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

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/perf"
	"github.com/benchmq/bench/internal/procstat"
)

// cmdPerf is `bench perf`: the harness against raw amqp091-go (and the watermill
// peer), side by side. `bench perf --child ...` is one of its consumer processes.
func cmdPerf(args []string) int {
	if len(args) > 0 && args[0] == "--child" {
		return perf.ChildMain(args[1:], os.Stdout, os.Stderr)
	}
	fs := pflag.NewFlagSet("bench perf", pflag.ContinueOnError)
	amqpURL := fs.String("amqp-url", "", "broker to measure against (default $AMQP_URL, then "+perf.DefaultURL+")")
	managed := fs.Bool("managed", false, "measure against a private rabbitmq-server node started for the run (see --erl-args); its CPU per message is reported too")
	erlArgs := fs.String("erl-args", perf.DefaultErlArgs, "Erlang VM arguments of the --managed node")
	repeat := fs.Int("repeat", perf.DefaultRepeat, "measure every figure N times, interleaved")
	messages := fs.Int64("messages", perf.DefaultMessages, "messages per consume and per publish run")
	rounds := fs.Int("publish-rounds", perf.DefaultPublishRounds, "publish runs per implementation and repetition")
	size := fs.Int("size", perf.DefaultSize, "body size in bytes of consumed and published messages")
	prefetches := fs.IntSlice("prefetch", perf.DefaultPrefetches(), "consume prefetch counts (each with concurrency 1 and = prefetch)")
	spikeJobs := fs.Int64("spike-jobs", perf.DefaultSpikeJobs, "jobs waiting in the memory spike")
	spikeSize := fs.Int("spike-size", perf.DefaultSpikeSize, "body size in bytes of the spike's jobs")
	spikeWork := fs.Duration("spike-work", perf.DefaultSpikeWork, "handler sleep per spike job")
	ledgerJobs := fs.Int64("ledger-jobs", perf.DefaultLedgerJobs, "jobs in the ledger memory measurement")
	only := fs.StringSlice("only", nil, fmt.Sprintf("run only these sections %v", perf.Sections()))
	peer := fs.String("peer", "", "watermill-amqp peer binary (build: cd internal/perf/watermillpeer && go build); empty = leave watermill out")
	jsonOut := fs.String("json", "", "also write the figures as JSON to this file")
	profile := fs.String("profile", "", "write CPU and allocation profiles of every consumer child to this directory (slows them: not for comparing)")
	strict := fs.Bool("strict", false, "exit 1 when a target is missed")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: bench perf [--managed] [--repeat N] [--messages N] [--peer BIN] [--only SECTION,...] [--json FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitInput
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitInput
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench perf: find own executable:", err)
		return exitEnv
	}
	if *managed && *amqpURL != "" {
		fmt.Fprintln(os.Stderr, "bench perf: --managed and --amqp-url exclude each other")
		return exitInput
	}
	url := *amqpURL
	if url == "" {
		url = os.Getenv(broker.EnvURL)
	}
	if url == "" {
		url = perf.DefaultURL
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bench perf:", err)
			return exitEnv
		}
		if *profile, err = filepath.Abs(*profile); err != nil {
			fmt.Fprintln(os.Stderr, "bench perf:", err)
			return exitEnv
		}
	}
	cfg := perf.Config{
		URL:           url,
		Child:         func(a []string) *exec.Cmd { return exec.Command(self, append([]string{"perf", "--child"}, a...)...) },
		Peer:          *peer,
		Repeat:        *repeat,
		Messages:      *messages,
		PublishRounds: *rounds,
		Size:          *size,
		Prefetches:    *prefetches,
		SpikeJobs:     *spikeJobs,
		SpikeSize:     *spikeSize,
		SpikeWork:     *spikeWork,
		LedgerJobs:    *ledgerJobs,
		Only:          *only,
		ProfileDir:    *profile,
		Progress:      os.Stderr,
	}
	if cfg.Repeat < 1 || cfg.PublishRounds < 1 || cfg.Messages < 2 || cfg.SpikeJobs < 2 || cfg.LedgerJobs < 1 {
		// Zero would mean "the default" to perf.Config; on the command line it is a mistake.
		fmt.Fprintln(os.Stderr, "bench perf: --repeat, --publish-rounds and --ledger-jobs must be at least 1, --messages and --spike-jobs at least 2")
		return exitInput
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	if *managed {
		fmt.Fprintf(os.Stderr, "starting a private rabbitmq-server node (Erlang VM args %q)...\n", *erlArgs)
		m, err := broker.StartManaged(ctx, broker.ManagedConfig{ErlArgs: *erlArgs})
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench perf:", err)
			return exitEnv
		}
		defer func() {
			if err := m.Close(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, "bench perf: stop the private node:", err)
			}
		}()
		cfg.URL = m.URL()
		cfg.BrokerCPU = func() (time.Duration, error) {
			pid := m.PID()
			if pid == 0 {
				return 0, errors.New("the private node is not running")
			}
			return procstat.CPU(pid)
		}
		cfg.BrokerNote = fmt.Sprintf("a private node on this machine started by bench perf --managed, Erlang VM args %q", *erlArgs)
	}
	rep, err := perf.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench perf:", err)
		var ce *perf.ConfigError
		if errors.As(err, &ce) {
			return exitInput
		}
		return exitEnv
	}
	fmt.Println()
	if err := rep.Print(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench perf:", err)
		return exitEnv
	}
	fmt.Printf("\ntook %s\n", time.Since(began).Round(time.Second))
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench perf: write json:", err)
			return exitEnv
		}
	}
	if *strict && len(rep.Missed()) > 0 {
		return exitGate
	}
	return exitOK
}
