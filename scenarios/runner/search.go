package runner

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/maxrate"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// searchSpec is the max-rate search the run does: the scenario's search
// key, or Options.MaxRate's default range.
func (r *Runner) searchSpec() (scenarios.Search, bool) {
	s := r.sc.Search
	if !s.Enabled() && r.opts.MaxRate {
		s.Rate = scenarios.DefaultSearchRange
	}
	return s, s.Enabled()
}

// searchVariant finds the variant's highest steady rate that meets the SLO
// (internal/maxrate), each step a run of settle + measure at one rate into
// its own directory. It returns the step at the max rate (the last step when
// none met), with the search attached.
func (r *Runner) searchVariant(ctx context.Context, i int, v scenarios.Variant, dir string) (report.Variant, error) {
	spec, _ := r.searchSpec()
	sc := v.Scenario
	var best, last *report.Variant
	n := 0
	probe := func(ctx context.Context, rate float64) (maxrate.Step, error) {
		n++
		ssc, err := stepScenario(sc, rate, spec.Settle+spec.Measure).Namespaced(r.namespace)
		if err != nil {
			return maxrate.Step{}, err
		}
		vr := &variantRun{r: r, index: i, v: v, sc: ssc, dir: filepath.Join(dir, fmt.Sprintf("step-%02d", n)), runID: newRunID(),
			log: r.log.With("variant", v.Name, "step", n, "rate", rate), settle: spec.Settle}
		rv, err := vr.run(ctx)
		if err != nil {
			rv.Error = err.Error()
		}
		st, verdict := judgeStep(sc, &rv, vr.coll, rate)
		rv.SLO = verdict
		last = &rv
		if st.Met {
			best = &rv
		}
		if w := r.opts.Progress; w != nil {
			fmt.Fprintf(w, "  %s step %d: %.0f/s p99 %.1fms %s\n", v.Name, n, rate, st.P99, stepWord(st))
		}
		return st, err
	}
	res, err := maxrate.Search(ctx, maxrate.Config{From: spec.Rate.From, To: spec.Rate.To, Precision: spec.Precision, MaxSteps: spec.MaxSteps}, probe)
	out := best
	if out == nil {
		out = last
	}
	if out == nil {
		out = &report.Variant{Name: v.Name, Params: v.Params, Series: map[string][]float64{}, Faults: []report.Fault{}, Gates: []report.Gate{}}
	}
	out.Search = &report.Search{From: spec.Rate.From, To: spec.Rate.To, SettleSeconds: spec.Settle.Seconds(),
		MeasureSeconds: spec.Measure.Seconds(), Result: res}
	return *out, err
}

// stepScenario is sc with its load replaced by one steady phase at rate.
func stepScenario(sc *scenarios.Scenario, rate float64, d time.Duration) *scenarios.Scenario {
	c := *sc
	size := 0
	for _, p := range sc.Load {
		if p.Size > 0 {
			size = p.Size
			break
		}
	}
	c.Load = []scenarios.Phase{{Phase: loadgen.Phase{Kind: loadgen.KindSteady, Rate: rate, For: d, Size: size}}}
	return &c
}

// judgeStep holds a step against the SLO at the step's rate, its latency
// taken after the settle time. A step whose generator fell behind or that
// failed does not meet.
func judgeStep(sc *scenarios.Scenario, rv *report.Variant, coll *collector, rate float64) (maxrate.Step, *report.SLOVerdict) {
	slo := report.SLO{Rate: rate}
	if sc.SLO != nil {
		slo.Objectives = sc.SLO.Objectives
	}
	judged := *rv
	if coll != nil {
		if s := coll.settledEndToEnd(); s.Count > 0 {
			judged.LatencyMS.EndToEnd = s
		}
	}
	verdict := slo.Judge(&judged, sc.Workers.Processes, sc.Workers.Concurrency)
	// The step is the harness's when the generator could not publish at
	// its rate, or when it sent late (harness_bound) and its lateness
	// alone could explain the miss. A step that meets despite late sends
	// meets: lateness only adds latency.
	// Short: below the rate with many sends late, not one late last send
	// stretching a short step.
	short := rv.Ledger.Published > 0 && rv.Throughput.PublishPerS < rate*(1-generatorSlack) && rv.LateSends*10 > rv.Ledger.Published
	behind := short || (rv.HarnessBound && !verdict.Met && lateExplains(verdict, rv.LateMaxMS/1e3))
	st := maxrate.Step{Met: verdict.Met && rv.Error == "" && !behind, P99: judged.LatencyMS.EndToEnd.P99,
		HarnessBound: behind, Reason: verdict.Reason, Error: rv.Error}
	switch {
	case short:
		st.Reason = fmt.Sprintf("the load generator published %.0f/s of %.0f/s", rv.Throughput.PublishPerS, rate)
	case behind:
		st.Reason = fmt.Sprintf("the load generator sent %d jobs late (worst %.0f ms), so the miss (%s) is not the workers' alone", rv.LateSends, rv.LateMaxMS, verdict.Reason)
	}
	return st, verdict
}

// lateExplains says whether every missed objective is an end-to-end
// latency that a send late by up to late seconds could have pushed over its
// target: end-to-end latency runs from the intended send time.
func lateExplains(v *report.SLOVerdict, late float64) bool {
	for _, c := range v.Checks {
		if c.Met {
			continue
		}
		if !strings.HasSuffix(c.Metric, "(end_to_end)") || !c.Measured || c.Value-late > c.Target {
			return false
		}
	}
	return true
}

// generatorSlack is how far below a step's rate the generator may publish
// (with more than a tenth of its sends late) before the step counts as the
// harness's ceiling.
const generatorSlack = 0.05

func stepWord(st maxrate.Step) string {
	switch {
	case st.Error != "":
		return "ERROR: " + st.Error
	case st.HarnessBound:
		return "HARNESS-BOUND: " + st.Reason
	case st.Met:
		return "meets"
	}
	return "misses: " + st.Reason
}

// printSearch writes a variant's search outcome under its summary.
func printSearch(w io.Writer, s *report.Search) {
	if s == nil {
		return
	}
	fmt.Fprintf(w, "  max rate %.0f/s: %s", s.MaxRate, s.Note)
	if s.Knee > 0 {
		fmt.Fprintf(w, "; p99 turns up after %.0f/s", s.Knee)
	}
	fmt.Fprintln(w)
}

// printSearches ends the run with each variant's max rate, highest first.
func printSearches(w io.Writer, res *report.Result) {
	if w == nil {
		return
	}
	var vs []report.Variant
	for _, v := range res.Variants {
		if v.Search != nil {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return
	}
	slices.SortStableFunc(vs, func(a, b report.Variant) int { return cmp.Compare(b.Search.MaxRate, a.Search.MaxRate) })
	fmt.Fprintln(w, "\nmax rate that meets the SLO, per variant:")
	for _, v := range vs {
		fmt.Fprintf(w, "  %s: %.0f/s (%s)\n", v.Name, v.Search.MaxRate, v.Search.Note)
	}
}
