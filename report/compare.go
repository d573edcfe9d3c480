package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/benchmq/bench/report/gate"
	"github.com/benchmq/bench/report/stats"
)

// The compared metrics, which of them gate by default, and their noise
// floors are the metric table's (Metric.Compare, Gated, Floor).
const (
	defaultMaxRegress = 0.15
	defaultMinSamples = 1000
	notMeasured       = "not measured"
)

// CompareOptions configures Compare. The zero value is usable.
type CompareOptions struct {
	// MaxRegression is the tolerated relative worsening of any metric, as a
	// fraction (0.15 = 15%). Zero means 0.15.
	MaxRegression float64
	// Thresholds overrides MaxRegression per metric (keys from CompareMetrics).
	Thresholds map[string]float64
	// MinSamples is the number of samples both sides' distributions need for
	// a latency metric to be compared. Zero means 1000.
	MinSamples int64
	// Alpha is the significance level of the rank test. Zero means 0.05.
	Alpha float64
	// Gate names compared metrics that gate beyond the default ones
	// (Metric.Gated), e.g. "p99(end_to_end)" when a saturated queue's
	// latency is the point of the scenario.
	Gate []string
}

func (o *CompareOptions) setDefaults() {
	if o.MaxRegression == 0 {
		o.MaxRegression = defaultMaxRegress
	}
	if o.MinSamples == 0 {
		o.MinSamples = defaultMinSamples
	}
	if o.Alpha == 0 {
		o.Alpha = stats.DefaultAlpha
	}
}

func (o CompareOptions) validate() error {
	var errs []error
	if o.MaxRegression < 0 || math.IsNaN(o.MaxRegression) {
		errs = append(errs, fmt.Errorf("max regression %v: must not be negative", o.MaxRegression))
	}
	if o.MinSamples < 0 {
		errs = append(errs, fmt.Errorf("min samples %d: must not be negative", o.MinSamples))
	}
	if !(o.Alpha > 0 && o.Alpha < 1) {
		errs = append(errs, fmt.Errorf("alpha %v: want a significance level in (0, 1)", o.Alpha))
	}
	known := strings.Join(CompareMetrics(), ", ")
	for _, k := range sortedKeys(o.Thresholds) {
		if m, ok := LookupMetric(k); !ok || !m.Compare {
			errs = append(errs, fmt.Errorf("threshold for unknown metric %q (known: %s)", k, known))
		}
		if v := o.Thresholds[k]; v < 0 || math.IsNaN(v) {
			errs = append(errs, fmt.Errorf("threshold for %s %v: must not be negative", k, v))
		}
	}
	for _, k := range o.Gate {
		if m, ok := LookupMetric(k); !ok || !m.Compare {
			errs = append(errs, fmt.Errorf("gate on unknown metric %q (known: %s)", k, known))
		}
	}
	return errors.Join(errs...)
}

// Verdict is the outcome of comparing one metric.
type Verdict string

// Verdicts. Only a regression of a gated metric fails the comparison.
const (
	VerdictNoChange             = Verdict(stats.NoChange)
	VerdictImproved             = Verdict(stats.Improved)
	VerdictRegressed            = Verdict(stats.Regressed)
	VerdictInconclusive         = Verdict(stats.Inconclusive)
	VerdictNotCompared  Verdict = "not compared"
)

// MetricDelta is one metric of one variant, baseline against new.
type MetricDelta struct {
	Metric string
	// Old and New are the medians of each side's runs (one value each for
	// single runs), after the machine normalisation when Normalised.
	Old, New float64
	N, M     int // runs on each side
	// Change is the shift of new against old (Hodges–Lehmann) relative to
	// Old; +Inf when Old is 0 and the shift is not. ChangeLow and ChangeHigh
	// are its 95 % interval, NaN when the runs are too few for one.
	Change, ChangeLow, ChangeHigh float64
	P                             float64 // the rank test's two-sided p-value
	Threshold                     float64 // the tolerated relative worsening
	Verdict                       Verdict
	// Gated: a regression of this metric fails the comparison; the others
	// are reported only.
	Gated bool
	// Normalised: the throughput of a saturated variant, scaled to the
	// baseline's machine by the calibration.
	Normalised bool
	Note       string // why: "p = 0.008", "within the limit", "not measured", ...
}

// Failed reports whether d fails the comparison.
func (d MetricDelta) Failed() bool { return d.Gated && d.Verdict == VerdictRegressed }

// Check is one invariant of the new result: a ledger count not beyond the
// baseline's, the run passed its own gates, was not interrupted.
type Check struct {
	Variant   string // "" for the result as a whole
	What      string // "lost", "duplicates", ..., "passed", "interrupted", "error"
	Base, New string // the values, for people
	Failed    bool
}

// VariantComparison holds the metrics of one variant present in both results.
type VariantComparison struct {
	Name    string
	Params  map[string]any
	Metrics []MetricDelta
	// MachineFactor is the new machine's calibrated capacity relative to the
	// baseline's (MachineFactor); 0 when either side was not calibrated.
	MachineFactor float64
}

// Comparison is the result of Compare.
type Comparison struct {
	Variants   []VariantComparison
	OnlyInBase []string // variant names of the baseline that the new result lacks
	OnlyInNew  []string // variant names of the new result that the baseline lacks
	// Checks are the ledger invariants and the new run's state; a failed one
	// fails the comparison whatever the metrics say.
	Checks []Check
	// Warnings are differences that do not fail the comparison but qualify
	// it: another scenario file, another machine, a failed baseline.
	Warnings []string
	Alpha    float64
}

// Regressed reports whether the comparison fails: a check failed, or a gated
// metric of a matched variant regressed.
func (c *Comparison) Regressed() bool {
	for _, ch := range c.Checks {
		if ch.Failed {
			return true
		}
	}
	for _, v := range c.Variants {
		for _, m := range v.Metrics {
			if m.Failed() {
				return true
			}
		}
	}
	return false
}

// invariants are the ledger counts that must not exceed the baseline's: any
// one of them above it means jobs were mishandled, however fast.
var invariants = []string{"lost", "duplicates", "tid_mismatches", "unconfirmed", "dead_lettered"}

// Compare compares cur against base. Variants are matched by their params;
// unmatched ones are listed in OnlyInBase/OnlyInNew and not compared.
//
// It is an error (bad input, not a regression) when either result holds an
// impossible value (Result.Check), when they are of different scenarios, when
// the baseline was interrupted or failed to run, or when no variant matches.
func Compare(base, cur *Result, opts CompareOptions) (*Comparison, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("compare results: %w", err)
	}
	if base == nil || cur == nil {
		return nil, fmt.Errorf("compare results: nil result")
	}
	c := &Comparison{Alpha: opts.Alpha}
	if err := c.identity(base, cur); err != nil {
		return nil, fmt.Errorf("compare results: %w", err)
	}
	baseByKey := map[string]*Variant{}
	for i := range base.Variants {
		baseByKey[paramsKey(base.Variants[i].Params)] = &base.Variants[i]
	}
	seen := map[string]bool{}
	var factors []float64
	differ := false
	for i := range cur.Variants {
		nv := &cur.Variants[i]
		k := paramsKey(nv.Params)
		ov, ok := baseByKey[k]
		if !ok {
			c.OnlyInNew = append(c.OnlyInNew, nv.Name)
			continue
		}
		seen[k] = true
		vc := VariantComparison{Name: nv.Name, Params: nv.Params}
		if f, ok := MachineFactor(ov, nv); ok {
			vc.MachineFactor = f
			factors = append(factors, f)
			differ = differ || machinesDiffer(ov, nv, opts)
		}
		vc.Metrics = compareVariant(ov, nv, opts)
		c.Variants = append(c.Variants, vc)
		checks, warns := variantChecks(ov, nv)
		c.Checks, c.Warnings = append(c.Checks, checks...), append(c.Warnings, warns...)
	}
	for i := range base.Variants {
		if !seen[paramsKey(base.Variants[i].Params)] {
			c.OnlyInBase = append(c.OnlyInBase, base.Variants[i].Name)
		}
	}
	if len(c.Variants) == 0 {
		return nil, fmt.Errorf("compare results: no variant of %q matches a variant of the baseline by params", cur.Scenario.Name)
	}
	if differ {
		what := "the machines differ"
		if h := base.Env.Hostname; h != "" && h == cur.Env.Hostname {
			// A shared host's broker and cores are busier at some times than at others.
			what = "the broker and machine are not as they were for the baseline (same host, other load?)"
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: this broker+machine moved %.2f× the baseline's messages in the calibration; "+
			"the throughput of saturated variants is normalised by it, latency, CPU and memory are not", what, stats.Median(factors)))
	}
	return c, nil
}

// identity checks that base and cur can be compared at all (an error), and
// records the new run's state as checks and what qualifies the comparison
// as warnings.
func (c *Comparison) identity(base, cur *Result) error {
	var errs []error
	if err := base.Check(); err != nil {
		errs = append(errs, fmt.Errorf("baseline: %w", err))
	}
	if err := cur.Check(); err != nil {
		errs = append(errs, fmt.Errorf("new result: %w", err))
	}
	if base.Scenario.Name != cur.Scenario.Name {
		errs = append(errs, fmt.Errorf("the baseline is a result of scenario %q, the new one of %q", base.Scenario.Name, cur.Scenario.Name))
	}
	if base.Interrupted {
		errs = append(errs, errors.New("the baseline was interrupted: its figures are partial; record it again"))
	} else if base.Error != "" {
		errs = append(errs, fmt.Errorf("the baseline run failed (%s); record it again", base.Error))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if base.Scenario.SHA256 != "" && cur.Scenario.SHA256 != "" && base.Scenario.SHA256 != cur.Scenario.SHA256 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("the scenario file changed since the baseline (sha256 %.12s… now %.12s…)", base.Scenario.SHA256, cur.Scenario.SHA256))
	}
	if !base.Passed {
		c.Warnings = append(c.Warnings, "the baseline did not pass its own gates: the new run is held to its figures")
	}
	c.Checks = append(c.Checks,
		Check{What: "passed", Base: fmt.Sprint(base.Passed), New: fmt.Sprint(cur.Passed), Failed: !cur.Passed},
		Check{What: "interrupted", Base: fmt.Sprint(base.Interrupted), New: fmt.Sprint(cur.Interrupted), Failed: cur.Interrupted})
	if cur.Error != "" {
		c.Checks = append(c.Checks, Check{What: "error", New: cur.Error, Failed: true})
	}
	return nil
}

// variantChecks holds nv's ledger invariants against ov's: no run of the new
// variant may exceed the worst run of the baseline. warns notes a load that
// differs from the baseline's.
func variantChecks(ov, nv *Variant) (checks []Check, warns []string) {
	for _, name := range invariants {
		m, _ := LookupMetric(name)
		bx, _ := runValues(ov, m)
		nx, _ := runValues(nv, m)
		bmax, nmax := slices.Max(bx), slices.Max(nx)
		checks = append(checks, Check{Variant: nv.Name, What: name, Base: FormatMetric(name, bmax), New: FormatMetric(name, nmax), Failed: nmax > bmax})
	}
	if nv.Error != "" {
		checks = append(checks, Check{Variant: nv.Name, What: "error", New: nv.Error, Failed: true})
	}
	pub, _ := LookupMetric("published")
	bx, _ := runValues(ov, pub)
	nx, _ := runValues(nv, pub)
	if b, n := stats.Median(bx), stats.Median(nx); b != n {
		// Not a failure (a --set may change the load on purpose), but the
		// figures then measure another load.
		warns = append(warns, fmt.Sprintf("variant %s published %.0f jobs per run, the baseline %.0f: the loads differ", nv.Name, n, b))
	}
	return checks, warns
}

// runValues is every run's value of m in v: v.Runs when v combines repeated
// runs, else its one value. ok is false when m was not measured.
func runValues(v *Variant, m Metric) ([]float64, bool) {
	if xs, ok := v.Runs[m.Name]; ok && len(xs) > 0 {
		return xs, true
	}
	x, ok := m.Value(v)
	if !ok {
		return []float64{0}, false
	}
	return []float64{x}, true
}

func compareVariant(ov, nv *Variant, opts CompareOptions) []MetricDelta {
	var out []MetricDelta
	for _, m := range metrics {
		if !m.Compare {
			continue
		}
		d := MetricDelta{Metric: m.Name, Threshold: opts.MaxRegression, Gated: m.Gated || gateAsked(m, opts.Gate),
			Change: math.NaN(), ChangeLow: math.NaN(), ChangeHigh: math.NaN(), P: 1}
		for _, name := range append([]string{m.Name}, m.Aliases...) {
			if t, ok := opts.Thresholds[name]; ok {
				d.Threshold = t
			}
		}
		bx, okb := runValues(ov, m)
		nx, okn := runValues(nv, m)
		d.N, d.M, d.Old, d.New = len(bx), len(nx), stats.Median(bx), stats.Median(nx)
		switch {
		case !okb || !okn || (m.Kind == gate.Size && (slices.Max(bx) == 0 || slices.Max(nx) == 0)):
			d.Verdict, d.Note = VerdictNotCompared, notMeasured
		case m.Samples != nil && (m.Samples(ov) < opts.MinSamples || m.Samples(nv) < opts.MinSamples):
			d.Verdict, d.Note = VerdictNotCompared, fmt.Sprintf("fewer than %d samples", opts.MinSamples)
		default:
			if m.Machine && Saturated(ov) && Saturated(nv) {
				if b, n, ok := normalise(ov, nv, bx, nx); ok {
					bx, nx, d.Normalised = b, n, true
				}
			}
			better := stats.LowerIsBetter
			if m.Better == Higher {
				better = stats.HigherIsBetter
			}
			o := stats.Judge(bx, nx, stats.Options{Limit: d.Threshold, Floor: m.Floor, Alpha: opts.Alpha, Better: better})
			d.Old, d.New, d.Change, d.ChangeLow, d.ChangeHigh, d.P = o.BaseMedian, o.NewMedian, o.Change, o.ChangeLow, o.ChangeHigh, o.Test.P
			d.Verdict, d.Note = Verdict(o.Verdict), o.Reason
		}
		out = append(out, d)
	}
	return out
}

func gateAsked(m Metric, gate []string) bool {
	for _, g := range gate {
		if g == m.Name || slices.Contains(m.Aliases, g) {
			return true
		}
	}
	return false
}

// machinesDiffer reports whether the calibrated capacities of ov and nv differ
// by more than the limit, judged as a metric is: beyond the limit and outside
// the noise of the runs' calibrations (a shared machine's calibration moves
// with whatever else runs), or beyond the limit alone when the runs are too
// few for a test.
func machinesDiffer(ov, nv *Variant, opts CompareOptions) bool {
	b, n := capacities(ov), capacities(nv)
	o := stats.Judge(b, n, stats.Options{Limit: opts.MaxRegression, Alpha: opts.Alpha})
	switch o.Verdict {
	case stats.Regressed, stats.Improved:
		return true
	case stats.Inconclusive:
		return stats.MinP(len(b), len(n)) >= opts.Alpha
	}
	return false
}

// normalise scales each run's throughput to the baseline's machine: value ×
// (the baseline's median capacity / that run's capacity). Run by run, so a
// run slowed by a busy machine is judged against what the machine could do
// at that moment. ok is false when a side lacks a calibration per run.
func normalise(ov, nv *Variant, bx, nx []float64) (b, n []float64, ok bool) {
	bc, nc := capacities(ov), capacities(nv)
	if len(bc) != len(bx) || len(nc) != len(nx) {
		return nil, nil, false
	}
	ref := stats.Median(bc)
	scale := func(xs, caps []float64) []float64 {
		out := make([]float64, len(xs))
		for i := range xs {
			out[i] = xs[i] * ref / caps[i]
		}
		return out
	}
	return scale(bx, bc), scale(nx, nc), true
}

// FormatChange formats a relative change as a signed percentage.
func FormatChange(c float64) string {
	switch {
	case math.IsNaN(c):
		return "–"
	case math.IsInf(c, 1):
		return "new"
	case math.IsInf(c, -1):
		return "gone"
	}
	return fmt.Sprintf("%+.1f%%", c*100)
}

func findVariant(r *Result, params map[string]any) *Variant {
	k := paramsKey(params)
	for i := range r.Variants {
		if paramsKey(r.Variants[i].Params) == k {
			return &r.Variants[i]
		}
	}
	return nil
}

// cloneResult deep-copies r through JSON so that Combine never aliases its input.
func cloneResult(r *Result) *Result {
	data, err := json.Marshal(r)
	if err == nil {
		var c Result
		if err = json.Unmarshal(data, &c); err == nil {
			return &c
		}
	}
	// Unencodable values (NaN) cannot come from result.json; fall back to a shallow copy.
	c := *r
	c.Variants = slices.Clone(r.Variants)
	return &c
}

// paramsKey is a canonical form of a variant's params: JSON with sorted keys,
// numbers in one notation whether they came from YAML (int) or JSON (float64).
func paramsKey(p map[string]any) string {
	if len(p) == 0 {
		return "{}"
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Sprint(p)
	}
	return string(data)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
