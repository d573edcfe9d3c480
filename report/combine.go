package report

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/benchmq/bench/report/stats"
)

// Combine merges repeated runs of one scenario (bench run --repeat N) into one
// result. Each variant of the first run (matched by params in the others)
// keeps every run's value of every metric in Runs, which is what the baseline
// comparison tests; its figures are the medians over the runs, except:
//
//   - the ledger is the sum of the runs' ledgers (one lost job in one run is a
//     lost job of the combined result);
//   - the histograms are merged (the distribution of every job of every run);
//   - series are left out, faults are the first run's, warnings and errors
//     are every run's, prefixed with the run;
//   - a gate passed only if it passed in every run; its value is the median.
//
// Passed is true only when every run passed; Interrupted when any was. It
// returns nil for no results.
func Combine(results []*Result) *Result {
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
	out.Repeat = len(rs)
	out.Error = ""
	for i, r := range rs {
		out.Passed = out.Passed && r.Passed
		out.Interrupted = out.Interrupted || r.Interrupted
		if r.Error != "" && out.Error == "" {
			out.Error = fmt.Sprintf("run %d: %s", i+1, r.Error)
		}
	}
	out.FinishedAt = rs[len(rs)-1].FinishedAt
	for i := range out.Variants {
		v := &out.Variants[i]
		var vs []*Variant
		var runs []int
		for j, r := range rs {
			if m := findVariant(r, v.Params); m != nil {
				vs, runs = append(vs, m), append(runs, j+1)
			}
		}
		combineVariant(v, vs, runs)
		if out.SLO != nil && v.SLO != nil && v.Search == nil {
			v.SLO = out.SLO.Judge(v, v.SLO.Processes, v.SLO.Concurrency) // on the medians
		}
	}
	out.Capacity = PlanCapacity(out)
	return out
}

// combineVariant sets v (a copy of vs[0]) to the combination of vs, the
// variant's runs numbered runs.
func combineVariant(v *Variant, vs []*Variant, runs []int) {
	v.Runs = map[string][]float64{}
	for _, m := range metrics {
		xs := make([]float64, 0, len(vs))
		for _, x := range vs {
			if val, ok := m.Value(x); ok {
				xs = append(xs, val)
			}
		}
		if len(xs) == len(vs) {
			v.Runs[m.Name] = xs
		}
	}
	medF := func(get func(*Variant) *float64) {
		xs := make([]float64, len(vs))
		for j, x := range vs {
			xs[j] = *get(x)
		}
		*get(v) = stats.Median(xs)
	}
	medI := func(get func(*Variant) *int64) {
		xs := make([]float64, len(vs))
		for j, x := range vs {
			xs[j] = float64(*get(x))
		}
		*get(v) = int64(math.Round(stats.Median(xs)))
	}
	sumI := func(get func(*Variant) *int64) {
		var n int64
		for _, x := range vs {
			n += *get(x)
		}
		*get(v) = n
	}
	for _, f := range []func(*Variant) *int64{
		func(x *Variant) *int64 { return &x.Ledger.Published }, func(x *Variant) *int64 { return &x.Ledger.Confirmed },
		func(x *Variant) *int64 { return &x.Ledger.Unconfirmed }, func(x *Variant) *int64 { return &x.Ledger.Succeeded },
		func(x *Variant) *int64 { return &x.Ledger.Recovered }, func(x *Variant) *int64 { return &x.Ledger.DeadLettered },
		func(x *Variant) *int64 { return &x.Ledger.Lost }, func(x *Variant) *int64 { return &x.Ledger.Duplicates },
		func(x *Variant) *int64 { return &x.Ledger.Redelivered }, func(x *Variant) *int64 { return &x.Ledger.Retries },
		func(x *Variant) *int64 { return &x.Ledger.TIDMismatches }, func(x *Variant) *int64 { return &x.Ledger.Emitted },
		func(x *Variant) *int64 { return &x.LateSends },
	} {
		sumI(f)
	}
	for _, sum := range []func(*Variant) *Summary{
		func(x *Variant) *Summary { return &x.LatencyMS.EndToEnd },
		func(x *Variant) *Summary { return &x.LatencyMS.PublishConfirm },
		func(x *Variant) *Summary { return &x.LatencyMS.Processing },
	} {
		medI(func(x *Variant) *int64 { return &sum(x).Count })
		for _, f := range []func(*Summary) *float64{
			func(s *Summary) *float64 { return &s.Mean }, func(s *Summary) *float64 { return &s.P50 },
			func(s *Summary) *float64 { return &s.P90 }, func(s *Summary) *float64 { return &s.P99 },
			func(s *Summary) *float64 { return &s.P999 }, func(s *Summary) *float64 { return &s.Max },
		} {
			medF(func(x *Variant) *float64 { return f(sum(x)) })
		}
	}
	for _, f := range []func(*Variant) *float64{
		func(x *Variant) *float64 { return &x.Throughput.PublishPerS }, func(x *Variant) *float64 { return &x.Throughput.CompletePerS },
		func(x *Variant) *float64 { return &x.DrainSeconds }, func(x *Variant) *float64 { return &x.LoadSeconds },
		func(x *Variant) *float64 { return &x.Breaker.OpenSeconds }, func(x *Variant) *float64 { return &x.WorkerCPUSeconds },
	} {
		medF(f)
	}
	for _, f := range []func(*Variant) *int64{
		func(x *Variant) *int64 { return &x.Peak.WorkerRSSBytes }, func(x *Variant) *int64 { return &x.Peak.WorkerHeapBytes },
		func(x *Variant) *int64 { return &x.Peak.QueueReady }, func(x *Variant) *int64 { return &x.Peak.QueueUnacked },
		func(x *Variant) *int64 { return &x.Peak.WorkerInflight }, func(x *Variant) *int64 { return &x.Peak.QueueRetry },
		func(x *Variant) *int64 { return &x.Peak.QueueDead }, func(x *Variant) *int64 { return &x.Peak.WorkerGoroutines },
		func(x *Variant) *int64 { return &x.Breaker.Opened },
	} {
		medI(f)
	}
	if pub, con := v.Runs["calibration_publish_per_s"], v.Runs["calibration_consume_per_s"]; len(pub) > 0 && len(con) > 0 && v.Calibration != nil {
		c := *v.Calibration
		c.PublishPerS, c.ConsumePerS = stats.Median(pub), stats.Median(con)
		v.Calibration = &c
	}
	v.Passed, v.HarnessBound, v.LateMaxMS = true, false, 0
	v.Warnings, v.Error = nil, ""
	for j, x := range vs {
		v.Passed = v.Passed && x.Passed
		v.HarnessBound = v.HarnessBound || x.HarnessBound
		v.LateMaxMS = math.Max(v.LateMaxMS, x.LateMaxMS)
		for _, w := range x.Warnings {
			v.Warnings = append(v.Warnings, fmt.Sprintf("run %d: %s", runs[j], w))
		}
		if x.Error != "" && v.Error == "" {
			v.Error = fmt.Sprintf("run %d: %s", runs[j], x.Error)
		}
	}
	v.Series = map[string][]float64{}
	v.Histograms = mergeHistograms(vs)
	v.Gates = combineGates(vs)
}

// combineGates: a gate passed only if it passed in every run that evaluated it.
func combineGates(vs []*Variant) []Gate {
	out := slices.Clone(vs[0].Gates)
	for i := range out {
		g := &out[i]
		var vals []float64
		for _, x := range vs {
			for _, xg := range x.Gates {
				if xg.Expr != g.Expr {
					continue
				}
				vals = append(vals, xg.Value)
				g.Passed = g.Passed && xg.Passed
				if g.Error == "" {
					g.Error = xg.Error
				}
			}
		}
		g.Value, g.Display = stats.Median(vals), ""
	}
	return out
}

// mergeHistograms merges each latency kind's histogram over the runs; a kind
// that a run lacks or that does not decode is left out.
func mergeHistograms(vs []*Variant) map[string]string {
	out := map[string]string{}
	for _, kind := range slices.Sorted(maps.Keys(vs[0].Histograms)) {
		merged := NewHistogram()
		ok := true
		for _, x := range vs {
			h, err := DecodeHistogram(x.Histograms[kind])
			if err != nil {
				ok = false
				break
			}
			merged.Merge(h)
		}
		if !ok {
			continue
		}
		if s, err := EncodeHistogram(merged); err == nil {
			out[kind] = s
		}
	}
	return out
}

// Within splits a result whose matrix has key with exactly two values into
// the two sides of an A/B comparison inside one run: a holds the variants
// with key's first value (the baseline), b those with the second, each with
// key removed from its params so that Compare pairs the A and B cells whose
// other params are equal. With --repeat and the interleaved run order (A B
// B A ...) both sides saw the same machine at the same times.
func Within(r *Result, key string) (a, b *Result, err error) {
	if r == nil {
		return nil, nil, fmt.Errorf("split result by %s: nil result", key)
	}
	var values []string
	sides := map[string]*Result{}
	for _, v := range r.Variants {
		val, ok := v.Params[key]
		if !ok {
			return nil, nil, fmt.Errorf("split result by %s: variant %q has no such matrix key (params %s)", key, v.Name, paramsKey(v.Params))
		}
		k := valueKey(val)
		side := sides[k]
		if side == nil {
			if len(values) == 2 {
				return nil, nil, fmt.Errorf("split result by %s: more than two values (%s, %s, %s); an A/B comparison needs exactly two", key, values[0], values[1], k)
			}
			values = append(values, k)
			c := *r
			c.Variants = nil
			side = &c
			sides[k] = side
		}
		cv := v
		cv.Params = maps.Clone(v.Params)
		delete(cv.Params, key)
		cv.Name = paramsName(cv.Params)
		side.Variants = append(side.Variants, cv)
	}
	if len(values) != 2 {
		return nil, nil, fmt.Errorf("split result by %s: %d value(s), an A/B comparison needs exactly two", key, len(values))
	}
	return sides[values[0]], sides[values[1]], nil
}

func valueKey(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

// paramsName names a variant by its params, "default" without any.
func paramsName(p map[string]any) string {
	if len(p) == 0 {
		return "default"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		parts = append(parts, k+"="+valueKey(p[k]))
	}
	return strings.Join(parts, ",")
}
