package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/benchmq/bench/report/gate"
)

// The compared metrics and their noise floors are the metric table's
// (Metric.Compare, Metric.Floor): a change smaller than the floor, in absolute
// terms, is never a regression however large it is relatively.
const (
	defaultMaxRegress = 0.15
	defaultMinSamples = 1000
	notGatedSamples   = "fewer than %d samples"
	notGatedAbsFloor  = "below the noise floor"
)

// CompareOptions configures Compare. The zero value is usable.
type CompareOptions struct {
	// MaxRegression is the tolerated relative worsening of any metric, as a
	// fraction (0.15 = 15%). Zero means 0.15.
	MaxRegression float64
	// Thresholds overrides MaxRegression per metric (keys from CompareMetrics).
	Thresholds map[string]float64
	// MinSamples is the number of end-to-end latency samples both sides need
	// for a latency metric to be gated. Zero means 1000.
	MinSamples int64
}

func (o *CompareOptions) setDefaults() {
	if o.MaxRegression == 0 {
		o.MaxRegression = defaultMaxRegress
	}
	if o.MinSamples == 0 {
		o.MinSamples = defaultMinSamples
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
	for _, k := range sortedKeys(o.Thresholds) {
		if m, ok := LookupMetric(k); !ok || !m.Compare {
			errs = append(errs, fmt.Errorf("threshold for unknown metric %q (known: %s)", k, strings.Join(CompareMetrics(), ", ")))
		}
		if v := o.Thresholds[k]; v < 0 || math.IsNaN(v) {
			errs = append(errs, fmt.Errorf("threshold for %s %v: must not be negative", k, v))
		}
	}
	return errors.Join(errs...)
}

// Verdict is the outcome of comparing one metric.
type Verdict string

// Verdicts.
const (
	VerdictOK        Verdict = "ok"
	VerdictImproved  Verdict = "improved"
	VerdictRegressed Verdict = "REGRESSED"
	VerdictNotGated  Verdict = "not gated"
)

// MetricDelta is one metric of one variant, old against new.
type MetricDelta struct {
	Metric    string
	Old, New  float64
	Change    float64 // relative: (new-old)/old; +Inf when old is 0 and new is not
	Threshold float64 // the tolerated relative worsening
	Verdict   Verdict
	Note      string // why a metric was not gated
}

// VariantComparison holds the metrics of one variant present in both results.
type VariantComparison struct {
	Name    string
	Params  map[string]any
	Metrics []MetricDelta
}

// Comparison is the result of Compare.
type Comparison struct {
	Variants   []VariantComparison
	OnlyInBase []string // variant names of the baseline that the new result lacks
	OnlyInNew  []string // variant names of the new result that the baseline lacks
}

// Regressed reports whether any gated metric of any matched variant regressed.
func (c *Comparison) Regressed() bool {
	for _, v := range c.Variants {
		for _, m := range v.Metrics {
			if m.Verdict == VerdictRegressed {
				return true
			}
		}
	}
	return false
}

// Compare compares cur against base. Variants are matched by their params;
// unmatched ones are listed in OnlyInBase/OnlyInNew and not gated. It is an
// error when no variant matches, since nothing would be compared.
func Compare(base, cur *Result, opts CompareOptions) (*Comparison, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("compare results: %w", err)
	}
	if base == nil || cur == nil {
		return nil, fmt.Errorf("compare results: nil result")
	}
	baseByKey := map[string]*Variant{}
	for i := range base.Variants {
		baseByKey[paramsKey(base.Variants[i].Params)] = &base.Variants[i]
	}
	c := &Comparison{}
	seen := map[string]bool{}
	for i := range cur.Variants {
		nv := &cur.Variants[i]
		k := paramsKey(nv.Params)
		ov, ok := baseByKey[k]
		if !ok {
			c.OnlyInNew = append(c.OnlyInNew, nv.Name)
			continue
		}
		seen[k] = true
		c.Variants = append(c.Variants, VariantComparison{Name: nv.Name, Params: nv.Params, Metrics: compareVariant(ov, nv, opts)})
	}
	for i := range base.Variants {
		if !seen[paramsKey(base.Variants[i].Params)] {
			c.OnlyInBase = append(c.OnlyInBase, base.Variants[i].Name)
		}
	}
	if len(c.Variants) == 0 {
		return nil, fmt.Errorf("compare results: no variant of %q matches a variant of the baseline by params", cur.Scenario.Name)
	}
	return c, nil
}

func compareVariant(ov, nv *Variant, opts CompareOptions) []MetricDelta {
	var out []MetricDelta
	for _, m := range metrics {
		if !m.Compare {
			continue
		}
		oldV, _ := m.Value(ov)
		newV, _ := m.Value(nv)
		d := MetricDelta{Metric: m.Name, Old: oldV, New: newV, Threshold: opts.MaxRegression}
		for _, name := range append([]string{m.Name}, m.Aliases...) {
			if t, ok := opts.Thresholds[name]; ok {
				d.Threshold = t
			}
		}
		d.Change = relChange(d.Old, d.New)
		worse := d.New - d.Old // positive = worse
		if m.Better == Higher {
			worse = -worse
		}
		latency := m.Kind == gate.Duration && m.Name != "drain_seconds"
		switch {
		case latency && (ov.LatencyMS.EndToEnd.Count < opts.MinSamples || nv.LatencyMS.EndToEnd.Count < opts.MinSamples):
			d.Verdict, d.Note = VerdictNotGated, fmt.Sprintf(notGatedSamples, opts.MinSamples)
		case m.Name == "drain_seconds" && d.Old < m.Floor && d.New < m.Floor:
			d.Verdict, d.Note = VerdictNotGated, "drain under 1 s"
		case m.Kind == gate.Size && (d.Old == 0 || d.New == 0):
			d.Verdict, d.Note = VerdictNotGated, "not measured"
		case worse != 0 && math.Abs(worse) < m.Floor && (d.Old == 0 || math.Abs(worse)/math.Abs(d.Old) > d.Threshold):
			d.Verdict, d.Note = VerdictNotGated, notGatedAbsFloor
		case math.Abs(worse) < m.Floor:
			d.Verdict = VerdictOK
		case worse > 0 && (d.Old == 0 || worse/math.Abs(d.Old) > d.Threshold):
			d.Verdict = VerdictRegressed
		case worse < 0 && d.Old != 0 && -worse/math.Abs(d.Old) > d.Threshold:
			d.Verdict = VerdictImproved
		default:
			d.Verdict = VerdictOK
		}
		out = append(out, d)
	}
	return out
}

func relChange(old, cur float64) float64 {
	switch {
	case old == cur:
		return 0
	case old == 0:
		return math.Inf(1)
	}
	return (cur - old) / math.Abs(old)
}

// Print writes c as a table: variant, metric, old, new, change, verdict.
func (c *Comparison) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "variant\tmetric\told\tnew\tchange\tlimit\tverdict")
	for _, v := range c.Variants {
		for _, m := range v.Metrics {
			verdict := string(m.Verdict)
			if m.Note != "" {
				verdict += " (" + m.Note + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, m.Metric,
				FormatMetric(m.Metric, m.Old), FormatMetric(m.Metric, m.New), FormatChange(m.Change),
				fmt.Sprintf("%.0f%%", m.Threshold*100), verdict)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print comparison: %w", err)
	}
	for _, n := range c.OnlyInBase {
		if _, err := fmt.Fprintf(w, "variant %s: only in the baseline, not compared\n", n); err != nil {
			return fmt.Errorf("print comparison: %w", err)
		}
	}
	for _, n := range c.OnlyInNew {
		if _, err := fmt.Fprintf(w, "variant %s: not in the baseline, not compared\n", n); err != nil {
			return fmt.Errorf("print comparison: %w", err)
		}
	}
	verdict := "no regression"
	if c.Regressed() {
		verdict = "REGRESSION"
	}
	if _, err := fmt.Fprintln(w, verdict); err != nil {
		return fmt.Errorf("print comparison: %w", err)
	}
	return nil
}

// FormatChange formats a relative change as a signed percentage.
func FormatChange(c float64) string {
	if math.IsInf(c, 1) {
		return "new"
	}
	return fmt.Sprintf("%+.1f%%", c*100)
}

// Median combines repeated runs of one scenario (bench run --repeat N): for
// each variant of the first result, every compared metric is the median over
// the results that have that variant (matched by params). The other fields are
// the first result's; Passed is true only when every run passed. It returns
// nil for no results.
func Median(results []*Result) *Result {
	var rs []*Result
	for _, r := range results {
		if r != nil {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	out := cloneResult(rs[0])
	for _, r := range rs {
		out.Passed = out.Passed && r.Passed
	}
	for i := range out.Variants {
		v := &out.Variants[i]
		var vs []*Variant
		for _, r := range rs {
			if m := findVariant(r, v.Params); m != nil {
				vs = append(vs, m)
				v.Passed = v.Passed && m.Passed
			}
		}
		med := func(get func(*Variant) float64) float64 {
			xs := make([]float64, len(vs))
			for j, x := range vs {
				xs[j] = get(x)
			}
			return median(xs)
		}
		v.LatencyMS.EndToEnd.P50 = med(func(x *Variant) float64 { return x.LatencyMS.EndToEnd.P50 })
		v.LatencyMS.EndToEnd.P99 = med(func(x *Variant) float64 { return x.LatencyMS.EndToEnd.P99 })
		v.LatencyMS.EndToEnd.Max = med(func(x *Variant) float64 { return x.LatencyMS.EndToEnd.Max })
		v.LatencyMS.EndToEnd.Count = int64(med(func(x *Variant) float64 { return float64(x.LatencyMS.EndToEnd.Count) }))
		v.Throughput.CompletePerS = med(func(x *Variant) float64 { return x.Throughput.CompletePerS })
		v.DrainSeconds = med(func(x *Variant) float64 { return x.DrainSeconds })
		v.Peak.WorkerRSSBytes = int64(med(func(x *Variant) float64 { return float64(x.Peak.WorkerRSSBytes) }))
		v.Ledger.Retries = int64(med(func(x *Variant) float64 { return float64(x.Ledger.Retries) }))
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
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

// cloneResult deep-copies r through JSON so that Median never aliases its input.
func cloneResult(r *Result) *Result {
	data, err := json.Marshal(r)
	if err != nil {
		// Unencodable values (NaN) cannot come from result.json; fall back to a shallow copy.
		c := *r
		c.Variants = slices.Clone(r.Variants)
		return &c
	}
	var c Result
	if err := json.Unmarshal(data, &c); err != nil {
		cp := *r
		cp.Variants = slices.Clone(r.Variants)
		return &cp
	}
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
