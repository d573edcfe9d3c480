// Package maxrate finds the highest steady rate a system sustains while
// meeting its objectives: step up geometrically from a starting rate until a
// step misses, then bisect between the highest rate that met and the lowest
// that missed. It knows nothing of brokers: a Probe runs one step.
//
// The search stops early when the load generator itself falls behind (the
// ceiling is then the harness's, not the system's), when the range's top
// still meets, or when it runs out of steps.
package maxrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Config bounds a search. Zero values take the documented defaults.
type Config struct {
	From, To  float64 // the first rate and the highest tried; 0 < From < To
	Factor    float64 // step-up multiplier; default 2
	Precision float64 // stop bisecting when (miss-met)/met <= Precision; default 0.1
	MaxSteps  int     // at most this many probes; default 12
}

// Step is one probe's outcome.
type Step struct {
	Rate float64 `json:"rate"`   // jobs/s offered
	Met  bool    `json:"met"`    // every objective held
	P99  float64 `json:"p99_ms"` // end-to-end p99 over the judged part of the step, ms; the curve's y
	// HarnessBound: the generator could not keep this rate, so the step
	// judges the harness, not the system.
	HarnessBound bool   `json:"harness_bound,omitempty"`
	Reason       string `json:"reason,omitempty"` // why it missed
	Error        string `json:"error,omitempty"`  // the step could not run
}

// Probe runs one step at rate.
type Probe func(ctx context.Context, rate float64) (Step, error)

// Why a search stopped.
const (
	CeilingSLO     = "slo"     // bracketed: the max rate is within Precision of a rate that misses
	CeilingHarness = "harness" // the generator fell behind: the ceiling is the harness's
	CeilingRange   = "range"   // the top of the range still met
	CeilingSteps   = "steps"   // MaxSteps ran out before the bracket was narrow enough
	CeilingBelow   = "below"   // even the first rate missed
)

// Result is a search's outcome.
type Result struct {
	MaxRate float64 `json:"max_rate"` // the highest rate that met; 0 when none did
	// MissRate is the lowest rate that missed above MaxRate; 0 when none did.
	MissRate float64 `json:"miss_rate,omitempty"`
	Ceiling  string  `json:"ceiling"`
	Note     string  `json:"note"`  // the ceiling in words
	Steps    []Step  `json:"steps"` // in the order run
	// Knee is the rate after which p99 climbs steeply (see Knee); 0 with
	// fewer than three points.
	Knee float64 `json:"knee,omitempty"`
}

func (c *Config) defaults() error {
	if c.Factor == 0 {
		c.Factor = 2
	}
	if c.Precision == 0 {
		c.Precision = 0.1
	}
	if c.MaxSteps == 0 {
		c.MaxSteps = 12
	}
	var errs []error
	if !(c.From > 0) || !(c.To > c.From) {
		errs = append(errs, fmt.Errorf("maxrate: want 0 < from < to, got from %g to %g", c.From, c.To))
	}
	if !(c.Factor > 1) {
		errs = append(errs, fmt.Errorf("maxrate: factor %g must be above 1", c.Factor))
	}
	if !(c.Precision > 0) {
		errs = append(errs, fmt.Errorf("maxrate: precision %g must be above 0", c.Precision))
	}
	if c.MaxSteps < 2 {
		errs = append(errs, fmt.Errorf("maxrate: max steps %d must be at least 2", c.MaxSteps))
	}
	return errors.Join(errs...)
}

// Search runs probes until it knows the highest rate that meets, to within
// cfg.Precision, or a stopping rule ends it. err is a Probe's error or the
// context's; the result holds the steps so far either way.
func Search(ctx context.Context, cfg Config, probe Probe) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	var res Result
	run := func(rate float64) (Step, bool, error) {
		if err := ctx.Err(); err != nil {
			return Step{}, false, err
		}
		st, err := probe(ctx, rate)
		st.Rate = rate
		if err != nil {
			st.Error = err.Error()
		}
		res.Steps = append(res.Steps, st)
		return st, err == nil, err
	}
	// Step up until a step misses.
	lo, hi := 0.0, 0.0
	for rate := cfg.From; ; rate = math.Min(rate*cfg.Factor, cfg.To) {
		st, ok, err := run(rate)
		if !ok {
			return res.stop(lo, 0, CeilingSteps), err
		}
		if st.HarnessBound {
			return res.stop(lo, rate, CeilingHarness), nil
		}
		if !st.Met {
			hi = rate
			break
		}
		lo = rate
		if rate >= cfg.To {
			return res.stop(lo, 0, CeilingRange), nil
		}
		if len(res.Steps) >= cfg.MaxSteps {
			return res.stop(lo, 0, CeilingSteps), nil
		}
	}
	if lo == 0 {
		return res.stop(0, hi, CeilingBelow), nil
	}
	// Bisect [lo met, hi missed].
	for (hi-lo)/lo > cfg.Precision {
		if len(res.Steps) >= cfg.MaxSteps {
			return res.stop(lo, hi, CeilingSteps), nil
		}
		mid := (lo + hi) / 2
		st, ok, err := run(mid)
		switch {
		case !ok:
			return res.stop(lo, hi, CeilingSteps), err
		case st.HarnessBound:
			return res.stop(lo, mid, CeilingHarness), nil
		case st.Met:
			lo = mid
		default:
			hi = mid
		}
	}
	return res.stop(lo, hi, CeilingSLO), nil
}

// stop records the outcome and says it in words.
func (r Result) stop(met, miss float64, ceiling string) Result {
	r.MaxRate, r.MissRate, r.Ceiling = met, miss, ceiling
	r.Knee = Knee(r.Steps)
	switch ceiling {
	case CeilingSLO:
		r.Note = fmt.Sprintf("meets the objectives up to %.0f/s and misses them at %.0f/s", met, miss)
	case CeilingHarness:
		r.Note = fmt.Sprintf("the load generator fell behind at %.0f/s: this ceiling is the harness's, not the workers' (they met %.0f/s)", miss, met)
	case CeilingRange:
		r.Note = fmt.Sprintf("still meets the objectives at the top of the range, %.0f/s: the real maximum is higher", met)
	case CeilingSteps:
		r.Note = fmt.Sprintf("stopped after %d steps: meets at %.0f/s", len(r.Steps), met)
		if miss > 0 {
			r.Note += fmt.Sprintf(", misses at %.0f/s", miss)
		}
	case CeilingBelow:
		r.Note = fmt.Sprintf("misses the objectives already at the first rate, %.0f/s", miss)
	}
	return r
}

// Knee is the rate after which p99 climbs steeply: on the rate-vs-p99 curve
// of the steps that ran (sorted by rate, both axes scaled to [0, 1]), the
// point farthest below the chord from the first to the last point (the
// Kneedle method). 0 with fewer than three usable points.
func Knee(steps []Step) float64 {
	var pts []Step
	for _, s := range steps {
		if s.Error == "" && s.P99 > 0 && !s.HarnessBound {
			pts = append(pts, s)
		}
	}
	slices.SortFunc(pts, func(a, b Step) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	if len(pts) < 3 {
		return 0
	}
	x0, x1 := pts[0].Rate, pts[len(pts)-1].Rate
	y0, y1 := pts[0].P99, pts[len(pts)-1].P99
	for _, p := range pts {
		y0, y1 = math.Min(y0, p.P99), math.Max(y1, p.P99)
	}
	if x1 == x0 || y1 == y0 {
		return 0
	}
	first := (pts[0].P99 - y0) / (y1 - y0)
	last := (pts[len(pts)-1].P99 - y0) / (y1 - y0)
	best, knee := 0.0, 0.0
	for _, p := range pts[1 : len(pts)-1] {
		x := (p.Rate - x0) / (x1 - x0)
		y := (p.P99 - y0) / (y1 - y0)
		chord := first + (last-first)*x
		if d := chord - y; d > best {
			best, knee = d, p.Rate
		}
	}
	return knee
}
