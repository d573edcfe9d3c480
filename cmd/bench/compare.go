package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/report"
)

func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("bench compare", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	maxRegression := fs.String("max-regression", "15%", "allowed relative regression of every metric")
	thresholds := fs.StringArray("threshold", nil, "per-metric limit, e.g. --threshold 'p99(end_to_end)=25%' (repeatable); metrics: "+strings.Join(report.CompareMetrics(), ", "))
	minSamples := fs.Int64("min-samples", 1000, "samples both results' distributions need for a latency to be compared")
	alpha := fs.Float64("alpha", 0.05, "significance level of the rank test: a change beyond the limit counts only when p is below it")
	gates := fs.StringArray("gate", nil, "also gate this compared metric, e.g. --gate 'p99(end_to_end)' (repeatable); gated by default: "+strings.Join(report.GatedMetrics(), ", "))
	ab := fs.String("ab", "", "compare within one RESULT.json: the variants of this matrix key's second value against those of its first")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench compare BASE.json NEW.json [--max-regression 15%] [--threshold metric=20%]... [--gate metric]...")
		fmt.Fprintln(stderr, "       bench compare RESULT.json --ab MATRIX.KEY")
		fmt.Fprintln(stderr, "Compares every variant of NEW with the baseline variant of the same params: every run's values")
		fmt.Fprintln(stderr, "(bench run --repeat N) with a rank test, the ledger, and whether NEW passed and finished.")
		fmt.Fprintln(stderr, "Exit codes: 0 no regression, 1 a gated metric regressed or a check failed, 2 bad input.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitInput
	}
	if want := 2 - min(len(*ab), 1); fs.NArg() != want {
		fs.Usage()
		return exitInput
	}
	opts, err := parseCompareFlags(*maxRegression, *thresholds, *minSamples)
	if err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return exitInput
	}
	opts.Alpha, opts.Gate = *alpha, *gates
	base, err := report.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return exitInput
	}
	var cur *report.Result
	if *ab != "" {
		base, cur, err = report.Within(base, *ab)
	} else {
		cur, err = report.ReadFile(fs.Arg(1))
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return exitInput
	}
	cmp, err := report.Compare(base, cur, opts)
	if err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return exitInput
	}
	if err := cmp.Print(stdout); err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return exitEnv
	}
	if cmp.Regressed() {
		return exitGate
	}
	return exitOK
}

// parseCompareFlags turns the flag values into CompareOptions, reporting every
// bad value at once.
func parseCompareFlags(maxRegression string, thresholds []string, minSamples int64) (report.CompareOptions, error) {
	var errs []error
	opts := report.CompareOptions{MinSamples: minSamples, Thresholds: map[string]float64{}}
	if minSamples < 1 {
		errs = append(errs, fmt.Errorf("--min-samples %d: must be at least 1", minSamples))
	}
	mr, err := parsePercent(maxRegression)
	if err != nil {
		errs = append(errs, fmt.Errorf("--max-regression: %w", err))
	}
	opts.MaxRegression = mr
	for _, t := range thresholds {
		name, val, ok := strings.Cut(t, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("--threshold %q: want metric=percent", t))
			continue
		}
		p, err := parsePercent(val)
		if err != nil {
			errs = append(errs, fmt.Errorf("--threshold %s: %w", name, err))
			continue
		}
		opts.Thresholds[strings.TrimSpace(name)] = p
	}
	for name := range opts.Thresholds {
		if m, ok := report.LookupMetric(name); !ok || !m.Compare {
			errs = append(errs, fmt.Errorf("--threshold: unknown metric %q (known: %s)", name, strings.Join(report.CompareMetrics(), ", ")))
		}
	}
	return opts, errors.Join(errs...)
}

// parsePercent parses a relative limit written as a percentage, "15%" or
// "15", into a fraction (0.15). A zero limit is refused: it would mean the
// default, which is not what "0%" says.
func parsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q: want a percentage such as 15%%", s)
	}
	if v <= 0 {
		return 0, fmt.Errorf("%q: must be above 0%%", s)
	}
	return v / 100, nil
}
