package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/scenarios/runner"
)

func cmdRun(args []string) int {
	fs := pflag.NewFlagSet("bench run", pflag.ContinueOnError)
	amqpURL := fs.String("amqp-url", "", "broker to use (default $AMQP_URL, then the scenario's broker.url, then a private managed node)")
	outDir := fs.String("out", "", "output directory (default out/<scenario>-<UTC timestamp>/)")
	sets := fs.StringArray("set", nil, "override a scenario key, e.g. --set workers.prefetch=50 (repeatable)")
	baseline := fs.String("baseline", "", "compare with this result.json; a regression exits 1")
	maxRegression := fs.String("max-regression", "", "allowed relative regression against --baseline (default the scenario's baseline.max_regression, else 15%)")
	repeat := fs.Int("repeat", 1, "run the scenario N times and compare the median with --baseline")
	verbose := fs.BoolP("verbose", "v", false, "log the environment's steps")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: bench run FILE.yaml [--amqp-url URL] [--out DIR] [--set key=value]... [--baseline result.json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitInput
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitInput
	}
	if *repeat < 1 {
		fmt.Fprintln(os.Stderr, "bench run: --repeat must be at least 1")
		return exitInput
	}
	sc, err := scenarios.Load(fs.Arg(0), *sets)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitInput
	}
	var base *report.Result
	if *baseline == "" && sc.Baseline.File != "" {
		*baseline = sc.Baseline.File
		if !filepath.IsAbs(*baseline) {
			*baseline = filepath.Join(filepath.Dir(sc.File), *baseline)
		}
	}
	if *baseline != "" {
		if base, err = report.ReadFile(*baseline); err != nil {
			fmt.Fprintln(os.Stderr, "bench run:", err)
			return exitInput
		}
	}
	cmpOpts, err := compareOptions(sc, *maxRegression)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench run:", err)
		return exitInput
	}
	dir := *outDir
	if dir == "" {
		dir = filepath.Join("out", sc.Name+"-"+time.Now().UTC().Format("20060102T150405Z"))
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var results []*report.Result
	var runErr error
	for i := range *repeat {
		d := dir
		if *repeat > 1 {
			d = filepath.Join(dir, fmt.Sprintf("run-%d", i+1))
		}
		r, err := runner.New(sc, runner.Options{AMQPURL: *amqpURL, OutDir: d, Progress: os.Stdout, TTY: isTTY(os.Stdout), Logger: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench run:", err)
			return exitEnv
		}
		res, err := r.Run(ctx)
		if werr := report.WriteAll(d, res, base); werr != nil {
			fmt.Fprintln(os.Stderr, "bench run:", werr)
			if err == nil {
				err = fmt.Errorf("%w: %w", runner.ErrEnvironment, werr)
			}
		}
		fmt.Printf("result: %s\n", filepath.Join(d, "result.json"))
		results = append(results, res)
		if err != nil {
			runErr = err
			break
		}
	}
	if runErr != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench run: interrupted; what was measured is in", dir)
		} else {
			fmt.Fprintln(os.Stderr, "bench run:", runErr)
		}
		return exitEnv
	}
	code := exitOK
	for _, res := range results {
		if !res.Passed {
			code = exitGate
		}
	}
	if base != nil {
		cur := results[0]
		if len(results) > 1 {
			cur = report.Median(results)
		}
		cmp, err := report.Compare(base, cur, cmpOpts)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench run: compare with baseline:", err)
			return exitInput
		}
		cmp.Print(os.Stdout)
		if cmp.Regressed() {
			code = exitGate
		}
	}
	if code == exitOK {
		fmt.Println("all gates passed")
	} else {
		fmt.Println("FAILED")
	}
	return code
}

func isTTY(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// compareMetricNames maps the gate-style metric names a scenario's
// baseline.thresholds may use to the comparer's names.
var compareMetricNames = map[string]string{
	"p50(end_to_end)":  report.MetricP50,
	"p99(end_to_end)":  report.MetricP99,
	"max(end_to_end)":  report.MetricMax,
	"complete_per_s":   report.MetricThroughput,
	"drain_seconds":    report.MetricDrain,
	"peak(worker_rss)": report.MetricPeakRSS,
	"retries":          report.MetricRetries,
}

// compareOptions merges the scenario's baseline block with --max-regression.
func compareOptions(sc *scenarios.Scenario, maxRegression string) (report.CompareOptions, error) {
	opts := report.CompareOptions{
		MaxRegression: sc.Baseline.MaxRegression,
		MinSamples:    int64(sc.Baseline.MinSamples),
		Thresholds:    map[string]float64{},
	}
	for k, v := range sc.Baseline.Thresholds {
		if name, ok := compareMetricNames[k]; ok {
			k = name
		}
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
