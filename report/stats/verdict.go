package stats

import (
	"errors"
	"fmt"
	"math"
)

// Verdict is what a comparison of two samples of one metric concludes.
type Verdict string

// Verdicts. Only Regressed fails a gate.
const (
	NoChange     Verdict = "no change"
	Regressed    Verdict = "regressed"
	Improved     Verdict = "improved"
	Inconclusive Verdict = "inconclusive — more repeats needed"
)

// Direction says which way a metric improves.
type Direction int

// Directions.
const (
	LowerIsBetter Direction = iota
	HigherIsBetter
)

// DefaultAlpha is the significance level when Options.Alpha is 0, benchstat's.
const DefaultAlpha = 0.05

// Options say what counts as a change.
type Options struct {
	// Limit is the tolerated relative worsening (0.15 = 15 %): a shift within
	// it is no change whatever the test says.
	Limit float64
	// Floor is the smallest absolute shift that can count, in the values'
	// unit: a smaller one is no change however large relatively.
	Floor float64
	// Alpha is the significance level of the rank test; 0 means DefaultAlpha.
	Alpha  float64
	Better Direction
}

// Validate reports every bad option at once.
func (o Options) Validate() error {
	var errs []error
	if !(o.Limit >= 0) || math.IsInf(o.Limit, 0) {
		errs = append(errs, fmt.Errorf("limit %v: want a fraction ≥ 0", o.Limit))
	}
	if !(o.Floor >= 0) || math.IsInf(o.Floor, 0) {
		errs = append(errs, fmt.Errorf("floor %v: want a value ≥ 0", o.Floor))
	}
	if !(o.Alpha >= 0 && o.Alpha < 1) {
		errs = append(errs, fmt.Errorf("alpha %v: want a level in (0, 1)", o.Alpha))
	}
	return errors.Join(errs...)
}

// Outcome is the comparison of a baseline sample with a new one.
type Outcome struct {
	Verdict Verdict
	// Why the verdict, in words: "p = 0.008", "within the limit", ...
	Reason string

	N, M                  int     // sample sizes: baseline, new
	BaseMedian, NewMedian float64 // the figures people read
	// Shift is new − base (Hodges–Lehmann) with its 95 % interval.
	Shift Shift
	// Change is Shift.Estimate relative to the baseline's median, and its
	// interval likewise; +Inf when the baseline's median is 0 and the shift
	// is not.
	Change, ChangeLow, ChangeHigh float64
	Test                          RankTest
}

// Judge compares the new sample cur with the baseline sample base:
//
//   - no change: the shift is below the floor, or within the limit;
//   - regressed / improved: the shift is beyond the limit and the rank test
//     says it is outside the noise (p < alpha);
//   - inconclusive: beyond the limit but not significant. When the sample
//     sizes cannot reach significance at all (1 against 3, 3 against 3) that
//     is always the verdict of a change beyond the limit: more repeats needed.
//
// Both samples must be non-empty; options are assumed valid.
func Judge(base, cur []float64, o Options) Outcome {
	alpha := o.Alpha
	if alpha == 0 {
		alpha = DefaultAlpha
	}
	out := Outcome{N: len(base), M: len(cur), BaseMedian: Median(base), NewMedian: Median(cur)}
	out.Shift = HodgesLehmann(base, cur, 0.95)
	out.Test = MannWhitney(base, cur)
	rel := func(d float64) float64 {
		switch {
		case d == 0:
			return 0
		case out.BaseMedian == 0:
			return math.Copysign(math.Inf(1), d)
		}
		return d / math.Abs(out.BaseMedian)
	}
	out.Change, out.ChangeLow, out.ChangeHigh = rel(out.Shift.Estimate), rel(out.Shift.Low), rel(out.Shift.High)
	worse := out.Shift.Estimate
	if o.Better == HigherIsBetter {
		worse = -worse
	}
	relWorse := rel(worse)
	switch {
	case worse == 0:
		out.Verdict, out.Reason = NoChange, "no shift"
	case math.Abs(worse) < o.Floor:
		out.Verdict, out.Reason = NoChange, "below the noise floor"
	case math.Abs(relWorse) <= o.Limit:
		out.Verdict, out.Reason = NoChange, "within the limit"
	case MinP(out.N, out.M) >= alpha:
		out.Verdict = Inconclusive
		out.Reason = fmt.Sprintf("%d against %d runs cannot reach p < %g", out.N, out.M, alpha)
	case out.Test.P >= alpha:
		out.Verdict, out.Reason = Inconclusive, fmt.Sprintf("p = %.2g, not below %g", out.Test.P, alpha)
	case worse > 0:
		out.Verdict, out.Reason = Regressed, fmt.Sprintf("p = %.2g", out.Test.P)
	default:
		out.Verdict, out.Reason = Improved, fmt.Sprintf("p = %.2g", out.Test.P)
	}
	return out
}
