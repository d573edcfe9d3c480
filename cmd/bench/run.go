package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/scenarios/runner"
)

var runCLI = cli{
	name:  "run",
	usage: "FILE.yaml [--amqp-url URL] [--out DIR] [--set key=value]... [--baseline result.json]",
	about: `Runs a scenario: for each variant of its matrix, brings up a broker, spawns the worker
processes, publishes the load, applies the faults, accounts for every job, drains, and
evaluates the gates. Output goes to --out (default out/<scenario>-<UTC timestamp>/):
result.json, report.html, junit.xml, one .hgrm file per variant and latency kind, and per
variant a directory with the worker logs. The path of result.json is printed at the end.

Which broker: a scenario with broker: {managed: true, nodes: N} (N >= 2) runs on a private
N-node cluster started once for the run and removed at its end, whatever the flags say.
Otherwise --amqp-url if given; else, when the scenario says broker: {managed: true} (needed by
the broker actions restart, kill, stop, block and the topology faults),
a private rabbitmq-server node started and removed for each variant; else $AMQP_URL; else
the scenario's broker.url; else a private node as above. Credentials never appear in the output.

On a broker bench did not start, bench never deletes, purges or consumes from a queue that
holds messages or has consumers it did not start, nor publishes into an exchange (the event,
job.emit) that exists already: it stops before the load with exit 3 and names them. Ways out:
--namespace auto runs under names of the run's own (the app, the task, the event and
job.emit prefixed with a run id), and --reset-queues takes the queues over (their messages are
deleted). At the end of each variant bench deletes the queues and exchanges it created, and
only those. A private node is the run's own: its queues are cleared before each variant.

With workers.command the workers are your own service (white-box when it is built on bench's
worker runtime, black-box through its completion events otherwise): its queues are its own, and
bench never deletes or purges them; --namespace and --reset-queues are refused with it.

Live: one progress line per second and variant when stdout is not a terminal (rate, p99 so
far, queue depth, worker RSS); --metrics-addr serves the same figures to Prometheus.`,
	examples: []string{
		"bench run scenarios/spike.yaml",
		"# against a shared broker, under names of the run's own:",
		"bench run scenarios/steady.yaml --amqp-url amqp://user:pass@rabbit:5672/ --namespace auto",
		"# the CI gate: five runs against the scenario's committed baseline of ten:",
		"bench run scenarios/ci.yaml --repeat 5 --out out/ci",
		"# override keys; a matrix key set by --set is pinned:",
		"bench run scenarios/spike.yaml --set workers.prefetch=50 --set load.0.spike.jobs=2000",
		"bench run scenarios/capacity.yaml --metrics-addr :9464",
		"# each variant's highest rate that meets the slo:",
		"bench run scenarios/max-rate.yaml",
		"bench run scenarios/capacity.yaml --max-rate --set workers.processes=2",
	},
	exits: exitsRun,
}

// runArgs are `bench run`'s settings once the flags and the scenario are read.
type runArgs struct {
	sc          *scenarios.Scenario
	amqpURL     string
	dir         string
	repeat      int
	base        *report.Result
	baseFile    string
	cmpOpts     report.CompareOptions
	verbose     bool
	resetQueues bool
	namespace   string
	metricsAddr string
	maxRate     bool
}

func cmdRun(args []string, s stdio) int {
	ra, code := parseRun(args, s)
	if code >= 0 {
		return code
	}
	level := slog.LevelWarn
	if ra.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := runner.Options{AMQPURL: ra.amqpURL, Progress: s.out, TTY: isTTY(s.out), Logger: log,
		ResetQueues: ra.resetQueues, Namespace: ra.namespace, MaxRate: ra.maxRate}
	if ra.metricsAddr != "" {
		srv, err := serveMetrics(ra.metricsAddr, s.err)
		if err != nil {
			fmt.Fprintln(s.err, "bench run:", err)
			return exitEnv
		}
		defer srv.close()
		fmt.Fprintf(s.out, "metrics: http://%s/metrics\n", srv.addr)
		opts.OnSnapshot = srv.update
	}
	results, err := runRepeats(ctx, ra, opts, s)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(s.err, "bench run: interrupted; what was measured is in", ra.dir)
		} else {
			fmt.Fprintln(s.err, "bench run:", err)
		}
		return exitEnv
	}
	code = exitOK
	for _, res := range results {
		if !res.Passed {
			code = exitGate
		}
	}
	res, err := combine(ra, results, s)
	if err != nil {
		fmt.Fprintln(s.err, "bench run:", err)
		return exitEnv
	}
	regressed, err := compareRun(ra, res, s)
	if err != nil {
		fmt.Fprintln(s.err, "bench run: compare:", err)
		return exitInput
	}
	if regressed {
		code = exitGate
	}
	if code == exitOK {
		fmt.Fprintln(s.out, "all gates passed")
	} else {
		fmt.Fprintln(s.out, "FAILED")
	}
	return code
}

// parseRun reads the flags, the scenario and the baseline; code is an exit
// code when the command must end here, -1 otherwise.
func parseRun(args []string, s stdio) (ra runArgs, code int) {
	fs := runCLI.flags()
	amqpURL := fs.String("amqp-url", "", "broker to use (default: see above)")
	outDir := fs.String("out", "", "output directory (default out/<scenario>-<UTC timestamp>/)")
	sets := fs.StringArray("set", nil, "override a scenario key, e.g. --set workers.prefetch=50 (repeatable)")
	baseline := fs.String("baseline", "", "compare with this result.json; a regression exits 1")
	maxRegression := fs.String("max-regression", "", "allowed relative regression against --baseline (default the scenario's baseline.max_regression, else 15%)")
	repeat := fs.Int("repeat", 1, "run the scenario N times (a matrix's variants interleaved A B, B A, ...) and compare every run's values with --baseline")
	namespace := fs.String("namespace", "", "prefix the app, task and event names with auto (a run id) or this name, so every queue and exchange is the run's own")
	resetQueues := fs.Bool("reset-queues", false, "take over existing queues of the scenario's names on an external broker: their messages are deleted")
	metricsAddr := fs.String("metrics-addr", "", "serve live metrics for Prometheus at this address, e.g. :9464 (/metrics)")
	maxRate := fs.Bool("max-rate", false, "find each variant's highest steady rate that meets the scenario's slo (its search key, else from 100/s to 20000/s)")
	verbose := fs.BoolP("verbose", "v", false, "log the environment's steps")
	if code, done := runCLI.parse(fs, args, s); done {
		return ra, code
	}
	if !runCLI.args(fs, 1, 1, s) {
		return ra, exitInput
	}
	if *repeat < 1 {
		return ra, runCLI.fail(s, "--repeat %d: must be at least 1", *repeat)
	}
	if *namespace != "" && *namespace != runner.NamespaceAuto {
		if err := scenarios.CheckNamespace(*namespace); err != nil {
			return ra, runCLI.fail(s, "--namespace: %v", err)
		}
	}
	sc, err := loadScenario(fs.Arg(0), *sets, s.in)
	if err != nil {
		fmt.Fprintln(s.err, err)
		return ra, exitInput
	}
	if err := runner.CheckOptions(sc, runner.Options{Namespace: *namespace, ResetQueues: *resetQueues}); err != nil {
		return ra, runCLI.fail(s, "%v", err)
	}
	ra = runArgs{sc: sc, amqpURL: *amqpURL, dir: *outDir, repeat: *repeat, verbose: *verbose,
		resetQueues: *resetQueues, namespace: *namespace, metricsAddr: *metricsAddr, maxRate: *maxRate}
	if *baseline == "" && sc.Baseline.File != "" {
		*baseline = sc.Baseline.File
		if !filepath.IsAbs(*baseline) {
			*baseline = filepath.Join(filepath.Dir(sc.File), *baseline)
		}
	}
	if *baseline != "" {
		ra.baseFile = *baseline
		if ra.base, err = report.ReadFile(*baseline); err != nil {
			fmt.Fprintln(s.err, "bench run:", err)
			return ra, exitInput
		}
	}
	if ra.cmpOpts, err = compareOptions(sc, *maxRegression); err != nil {
		return ra, runCLI.fail(s, "%v", err)
	}
	if ra.dir == "" {
		ra.dir = filepath.Join("out", sc.Name+"-"+time.Now().UTC().Format("20060102T150405Z"))
	}
	return ra, -1
}

// runRepeats runs the scenario ra.repeat times, each into its own directory
// when there are several, writing every result as it ends. The variants of a
// matrix run in the interleaved order of runner.RunOrder (A B, B A, A B, ...).
func runRepeats(ctx context.Context, ra runArgs, opts runner.Options, s stdio) ([]*report.Result, error) {
	variants, err := ra.sc.Variants()
	if err != nil {
		return nil, err
	}
	orders := runner.RunOrder(len(variants), ra.repeat)
	var results []*report.Result
	for i := range ra.repeat {
		d := ra.dir
		if ra.repeat > 1 {
			d = filepath.Join(ra.dir, fmt.Sprintf("run-%d", i+1))
		}
		opts.OutDir, opts.Order = d, orders[i]
		r, err := runner.New(ra.sc, opts)
		if err != nil {
			return results, err
		}
		res, err := r.Run(ctx)
		if werr := report.WriteAll(d, res, ra.base); werr != nil {
			fmt.Fprintln(s.err, "bench run:", werr)
			if err == nil {
				err = fmt.Errorf("%w: %w", runner.ErrEnvironment, werr)
			}
		}
		fmt.Fprintf(s.out, "result: %s\n", filepath.Join(d, report.ResultFile))
		results = append(results, res)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// combine returns what the comparisons judge: the one result, or the
// combination of the repeated runs (every run's values and their medians),
// which it writes into the output directory beside the runs.
func combine(ra runArgs, results []*report.Result, s stdio) (*report.Result, error) {
	if len(results) == 1 {
		return results[0], nil
	}
	res := report.Combine(results)
	if err := report.WriteAll(ra.dir, res, ra.base); err != nil {
		return res, err
	}
	fmt.Fprintf(s.out, "result of the %d runs: %s\n", len(results), filepath.Join(ra.dir, report.ResultFile))
	return res, nil
}

// compareRun compares the run with the baseline, and its A/B sides when the
// scenario names a matrix key to split by (baseline.ab), printing each
// comparison. regressed is true when either failed.
func compareRun(ra runArgs, res *report.Result, s stdio) (regressed bool, err error) {
	if ra.base != nil {
		cmp, err := report.Compare(ra.base, res, ra.cmpOpts)
		if err != nil {
			return false, err
		}
		fmt.Fprintf(s.out, "\nagainst the baseline (%s):\n", ra.baseFile)
		if err := cmp.Print(s.out); err != nil {
			return false, err
		}
		regressed = cmp.Regressed()
	}
	if key := ra.sc.Baseline.AB; key != "" {
		a, b, err := report.Within(res, key)
		if err != nil {
			return false, err
		}
		cmp, err := report.Compare(a, b, ra.cmpOpts)
		if err != nil {
			return false, err
		}
		fmt.Fprintf(s.out, "\nA/B within the run: %s, the first value as the baseline:\n", key)
		if err := cmp.Print(s.out); err != nil {
			return false, err
		}
		regressed = regressed || cmp.Regressed()
	}
	return regressed, nil
}

func isTTY(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// compareOptions merges the scenario's baseline block with --max-regression.
func compareOptions(sc *scenarios.Scenario, maxRegression string) (report.CompareOptions, error) {
	opts := report.CompareOptions{
		MaxRegression: sc.Baseline.MaxRegression,
		MinSamples:    int64(sc.Baseline.MinSamples),
		Thresholds:    map[string]float64{},
		Alpha:         sc.Baseline.Alpha,
		Gate:          sc.Baseline.Gate,
	}
	for k, v := range sc.Baseline.Thresholds {
		opts.Thresholds[k] = v
	}
	if maxRegression != "" {
		v, err := parsePercent(maxRegression)
		if err != nil {
			return opts, fmt.Errorf("--max-regression: %w", err)
		}
		opts.MaxRegression = v
	}
	return opts, nil
}
