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

// runArgs are `bench run`'s settings once the flags and the scenario are read.
type runArgs struct {
	sc       *scenarios.Scenario
	amqpURL  string
	dir      string
	repeat   int
	base     *report.Result
	baseFile string
	cmpOpts  report.CompareOptions
	verbose  bool
}

func cmdRun(args []string) int {
	ra, code := parseRun(args)
	if code >= 0 {
		return code
	}
	level := slog.LevelWarn
	if ra.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	results, err := runRepeats(ctx, ra, log)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench run: interrupted; what was measured is in", ra.dir)
		} else {
			fmt.Fprintln(os.Stderr, "bench run:", err)
		}
		return exitEnv
	}
	code = exitOK
	for _, res := range results {
		if !res.Passed {
			code = exitGate
		}
	}
	res, err := combine(ra, results)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench run:", err)
		return exitEnv
	}
	regressed, err := compareRun(ra, res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench run: compare:", err)
		return exitInput
	}
	if regressed {
		code = exitGate
	}
	if code == exitOK {
		fmt.Println("all gates passed")
	} else {
		fmt.Println("FAILED")
	}
	return code
}

// parseRun reads the flags, the scenario and the baseline; code is an exit
// code when the command must end here, -1 otherwise.
func parseRun(args []string) (ra runArgs, code int) {
	fs := pflag.NewFlagSet("bench run", pflag.ContinueOnError)
	amqpURL := fs.String("amqp-url", "", "broker to use (default $AMQP_URL, then the scenario's broker.url, then a private managed node)")
	outDir := fs.String("out", "", "output directory (default out/<scenario>-<UTC timestamp>/)")
	sets := fs.StringArray("set", nil, "override a scenario key, e.g. --set workers.prefetch=50 (repeatable)")
	baseline := fs.String("baseline", "", "compare with this result.json; a regression exits 1")
	maxRegression := fs.String("max-regression", "", "allowed relative regression against --baseline (default the scenario's baseline.max_regression, else 15%)")
	repeat := fs.Int("repeat", 1, "run the scenario N times (a matrix's variants interleaved A B, B A, ...) and compare every run's values with --baseline")
	verbose := fs.BoolP("verbose", "v", false, "log the environment's steps")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: bench run FILE.yaml [--amqp-url URL] [--out DIR] [--set key=value]... [--baseline result.json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return ra, exitOK
		}
		return ra, exitInput
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return ra, exitInput
	}
	if *repeat < 1 {
		fmt.Fprintln(os.Stderr, "bench run: --repeat must be at least 1")
		return ra, exitInput
	}
	sc, err := loadScenario(fs.Arg(0), *sets)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ra, exitInput
	}
	ra = runArgs{sc: sc, amqpURL: *amqpURL, dir: *outDir, repeat: *repeat, verbose: *verbose}
	if *baseline == "" && sc.Baseline.File != "" {
		*baseline = sc.Baseline.File
		if !filepath.IsAbs(*baseline) {
			*baseline = filepath.Join(filepath.Dir(sc.File), *baseline)
		}
	}
	if *baseline != "" {
		ra.baseFile = *baseline
		if ra.base, err = report.ReadFile(*baseline); err != nil {
			fmt.Fprintln(os.Stderr, "bench run:", err)
			return ra, exitInput
		}
	}
	if ra.cmpOpts, err = compareOptions(sc, *maxRegression); err != nil {
		fmt.Fprintln(os.Stderr, "bench run:", err)
		return ra, exitInput
	}
	if ra.dir == "" {
		ra.dir = filepath.Join("out", sc.Name+"-"+time.Now().UTC().Format("20060102T150405Z"))
	}
	return ra, -1
}

// runRepeats runs the scenario ra.repeat times, each into its own directory
// when there are several, writing every result as it ends. The variants of a
// matrix run in the interleaved order of runner.RunOrder (A B, B A, A B, ...).
func runRepeats(ctx context.Context, ra runArgs, log *slog.Logger) ([]*report.Result, error) {
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
		r, err := runner.New(ra.sc, runner.Options{AMQPURL: ra.amqpURL, OutDir: d, Order: orders[i], Progress: os.Stdout, TTY: isTTY(os.Stdout), Logger: log})
		if err != nil {
			return results, err
		}
		res, err := r.Run(ctx)
		if werr := report.WriteAll(d, res, ra.base); werr != nil {
			fmt.Fprintln(os.Stderr, "bench run:", werr)
			if err == nil {
				err = fmt.Errorf("%w: %w", runner.ErrEnvironment, werr)
			}
		}
		fmt.Printf("result: %s\n", filepath.Join(d, "result.json"))
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
func combine(ra runArgs, results []*report.Result) (*report.Result, error) {
	if len(results) == 1 {
		return results[0], nil
	}
	res := report.Combine(results)
	if err := report.WriteAll(ra.dir, res, ra.base); err != nil {
		return res, err
	}
	fmt.Printf("result of the %d runs: %s\n", len(results), filepath.Join(ra.dir, "result.json"))
	return res, nil
}

// compareRun compares the run with the baseline, and its A/B sides when the
// scenario names a matrix key to split by (baseline.ab), printing each
// comparison. regressed is true when either failed.
func compareRun(ra runArgs, res *report.Result) (regressed bool, err error) {
	if ra.base != nil {
		cmp, err := report.Compare(ra.base, res, ra.cmpOpts)
		if err != nil {
			return false, err
		}
		fmt.Printf("\nagainst the baseline (%s):\n", ra.baseFile)
		if err := cmp.Print(os.Stdout); err != nil {
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
		fmt.Printf("\nA/B within the run: %s, the first value as the baseline:\n", key)
		if err := cmp.Print(os.Stdout); err != nil {
			return false, err
		}
		regressed = regressed || cmp.Regressed()
	}
	return regressed, nil
}

func isTTY(f *os.File) bool {
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
