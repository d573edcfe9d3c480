package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func cloneForTest(t *testing.T, r *Result) *Result {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var c Result
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// passing is the synthetic result as a passing, calibrated run with worker
// CPU measured.
func passing(t *testing.T) *Result {
	r := syntheticResult(t)
	r.Passed = true
	for i := range r.Variants {
		v := &r.Variants[i]
		v.Passed = true
		v.WorkerCPUSeconds = 1.5
		v.Calibration = &Calibration{Messages: 5000, Size: 1024, PublishPerS: 9000, ConsumePerS: 11000, Seconds: 1}
	}
	return r
}

// jitter scales the run-to-run figures of r by independent draws of about
// ±3 %: what repeated runs of unchanged code look like.
func jitter(r *Result, rng *rand.Rand) {
	f := func() float64 { return math.Exp(0.03 * rng.NormFloat64()) }
	for i := range r.Variants {
		v := &r.Variants[i]
		for _, s := range []*Summary{&v.LatencyMS.EndToEnd, &v.LatencyMS.PublishConfirm, &v.LatencyMS.Processing} {
			scale(s, f())
		}
		v.Throughput.CompletePerS *= f()
		v.DrainSeconds *= f()
		v.Peak.WorkerRSSBytes = int64(float64(v.Peak.WorkerRSSBytes) * f())
		v.WorkerCPUSeconds *= f()
		v.Ledger.Retries += int64(rng.IntN(7)) - 3
		v.Calibration.PublishPerS *= f()
		v.Calibration.ConsumePerS *= f()
	}
}

// scale multiplies every figure of a latency summary by k.
func scale(s *Summary, k float64) {
	s.Mean, s.P50, s.P90, s.P99, s.P999, s.Max = s.Mean*k, s.P50*k, s.P90*k, s.P99*k, s.P999*k, s.Max*k
}

// repeated combines n jittered runs, each changed by mutate (may be nil).
func repeated(t *testing.T, seed uint64, n int, mutate func(*Result)) *Result {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 19))
	var rs []*Result
	for range n {
		r := passing(t)
		jitter(r, rng)
		if mutate != nil {
			mutate(r)
		}
		rs = append(rs, r)
	}
	return Combine(rs)
}

func deltaOf(t *testing.T, c *Comparison, variant, metric string) MetricDelta {
	t.Helper()
	for _, v := range c.Variants {
		if v.Name != variant {
			continue
		}
		for _, m := range v.Metrics {
			if m.Metric == metric {
				return m
			}
		}
	}
	t.Fatalf("no %s/%s in comparison", variant, metric)
	return MetricDelta{}
}

func printed(t *testing.T, c *Comparison) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func mustCompare(t *testing.T, base, cur *Result, opts CompareOptions) *Comparison {
	t.Helper()
	c, err := Compare(base, cur, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Unchanged code: two sets of five runs with noise. Nothing regresses, and
// what is beyond the limit at all is inconclusive, not a regression.
func TestCompareUnchangedRepeatedRuns(t *testing.T) {
	// The baseline went through JSON (params are float64 there, int here).
	base := cloneForTest(t, repeated(t, 1, 5, nil))
	cur := repeated(t, 2, 5, nil)
	c := mustCompare(t, base, cur, CompareOptions{})
	out := printed(t, c)
	if c.Regressed() || len(c.Variants) != 2 || len(c.OnlyInBase)+len(c.OnlyInNew) != 0 {
		t.Fatalf("unchanged runs: regressed %v, %d variants, unmatched %v %v\n%s", c.Regressed(), len(c.Variants), c.OnlyInBase, c.OnlyInNew, out)
	}
	d := deltaOf(t, c, "prefetch=10", "p90(processing)")
	if d.Verdict != VerdictNoChange || d.N != 5 || d.M != 5 || !d.Gated {
		t.Errorf("p90(processing): %+v", d)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings on the same machine: %q", c.Warnings)
	}
	if !strings.Contains(out, "no regression") || strings.Contains(out, "REGRESS") || !strings.Contains(out, "5/5") {
		t.Errorf("print:\n%s", out)
	}
}

// A 40 % slower handler over five runs against five: processing time and CPU
// per job regress, with their intervals and p-values.
func TestCompareRepeatedRegression(t *testing.T) {
	base := repeated(t, 1, 5, nil)
	cur := repeated(t, 2, 5, func(r *Result) {
		for i := range r.Variants {
			scale(&r.Variants[i].LatencyMS.Processing, 1.4)
			r.Variants[i].WorkerCPUSeconds *= 1.4
		}
	})
	c := mustCompare(t, base, cur, CompareOptions{})
	if !c.Regressed() {
		t.Fatalf("40 %% slower handler not caught:\n%s", printed(t, c))
	}
	for _, metric := range []string{"p50(processing)", "p90(processing)", "cpu_per_1k_jobs"} {
		d := deltaOf(t, c, "prefetch=100", metric)
		if d.Verdict != VerdictRegressed || d.Change < 0.3 || d.Change > 0.5 || math.IsNaN(d.ChangeLow) || d.ChangeLow > d.Change || d.P > 0.05 {
			t.Errorf("%s: %+v", metric, d)
		}
		if gated := metric != "cpu_per_1k_jobs"; d.Gated != gated {
			t.Errorf("%s: gated %v, want %v", metric, d.Gated, gated)
		}
	}
	if d := deltaOf(t, c, "prefetch=100", "p99(end_to_end)"); d.Verdict != VerdictNoChange {
		t.Errorf("untouched metric: %+v", d)
	}
	out := printed(t, c)
	if !strings.Contains(out, "REGRESSION in prefetch=10 p50(processing)") || !strings.Contains(out, "+42.7% [+37.3% … +50.8%]  0.008  5/5   15%    REGRESSED") {
		t.Errorf("print:\n%s", out)
	}
	// A per-metric limit above the change lets it pass.
	c = mustCompare(t, base, cur, CompareOptions{Thresholds: map[string]float64{
		"p50(processing)": 0.6, "p90(processing)": 0.6, "p99(processing)": 0.6}})
	if c.Regressed() {
		t.Errorf("limits of 60 %%: still regressed\n%s", printed(t, c))
	}
}

// One run against one (the old baselines): a doubling cannot be told from
// noise, so it is inconclusive, and the output says more repeats are needed.
func TestCompareSingleRunsAreInconclusive(t *testing.T) {
	base := passing(t)
	cur := cloneForTest(t, base)
	scale(&cur.Variants[1].LatencyMS.Processing, 2)
	c := mustCompare(t, base, cur, CompareOptions{})
	if c.Regressed() {
		t.Fatalf("one run against one: regressed\n%s", printed(t, c))
	}
	if d := deltaOf(t, c, "prefetch=100", "p99(processing)"); d.Verdict != VerdictInconclusive || d.N != 1 || !strings.Contains(d.Note, "1 against 1") {
		t.Errorf("doubled p99 in one run: %+v", d)
	}
	if out := printed(t, c); !strings.Contains(out, "inconclusive — more repeats needed") {
		t.Errorf("print:\n%s", out)
	}
}

// End-to-end latency of a backed-up queue is reported, and gated only when
// the scenario asks (baseline.gate).
func TestCompareEndToEndGatedOnlyWhenAsked(t *testing.T) {
	base := repeated(t, 1, 5, nil)
	cur := repeated(t, 2, 5, func(r *Result) { scale(&r.Variants[0].LatencyMS.EndToEnd, 2) })
	c := mustCompare(t, base, cur, CompareOptions{})
	d := deltaOf(t, c, "prefetch=10", "p99(end_to_end)")
	if c.Regressed() || d.Verdict != VerdictRegressed || d.Gated {
		t.Fatalf("doubled e2e p99, not asked: regressed %v, %+v", c.Regressed(), d)
	}
	if out := printed(t, c); !strings.Contains(out, "reported, not gated") {
		t.Errorf("print:\n%s", out)
	}
	c = mustCompare(t, base, cur, CompareOptions{Gate: []string{"p99_ms"}})
	if !c.Regressed() || !deltaOf(t, c, "prefetch=10", "p99(end_to_end)").Gated {
		t.Errorf("doubled e2e p99, gated by its alias: not a regression\n%s", printed(t, c))
	}
}

// Issue 13, item 4: broken runs fail the comparison whatever their speed.
func TestCompareFailsBrokenRuns(t *testing.T) {
	base := repeated(t, 1, 5, nil)
	for _, c := range []struct {
		name   string
		mutate func(*Result)
		want   string
	}{
		{"lost", func(r *Result) { r.Variants[0].Ledger.Lost = 500; r.Variants[0].Ledger.Succeeded -= 500 }, "variant prefetch=10: lost 500, the baseline at most 0"},
		{"duplicates", func(r *Result) { r.Variants[1].Ledger.Duplicates = 77 }, "variant prefetch=100: duplicates 77, the baseline at most 1"},
		{"tid mismatches", func(r *Result) { r.Variants[1].Ledger.TIDMismatches = 3 }, "tid_mismatches 3"},
		{"unconfirmed", func(r *Result) { r.Variants[1].Ledger.Unconfirmed, r.Variants[1].Ledger.Confirmed = 2, 9998 }, "unconfirmed 2"},
		{"dead letters beyond the baseline", func(r *Result) { r.Variants[0].Ledger.DeadLettered = 51 }, "dead_lettered 51, the baseline at most 50"},
		{"failed and interrupted", func(r *Result) { r.Passed, r.Interrupted = false, true }, "was interrupted"},
		{"failed its own gates", func(r *Result) { r.Passed = false }, "did not pass its own gates"},
		{"variant error", func(r *Result) { r.Variants[1].Error = "environment failure: worker died" }, "variant prefetch=100 failed: run 3: environment failure"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Broken in one of five runs only: still broken.
			i := 0
			cur := repeated(t, 2, 5, func(r *Result) {
				if i++; i == 3 {
					c.mutate(r)
				}
			})
			cmp := mustCompare(t, base, cur, CompareOptions{})
			out := printed(t, cmp)
			if !cmp.Regressed() || !strings.Contains(out, "FAILED: "+c.want) && !strings.Contains(out, c.want) || !strings.Contains(out, "REGRESSION") {
				t.Errorf("not failed, or without %q:\n%s", c.want, out)
			}
		})
	}
	// Dead letters within the baseline's own are no failure.
	cur := repeated(t, 2, 5, func(r *Result) { r.Variants[0].Ledger.DeadLettered = 49 })
	if cmp := mustCompare(t, base, cur, CompareOptions{}); cmp.Regressed() {
		t.Errorf("49 dead letters against 50: failed\n%s", printed(t, cmp))
	}
}

// Issue 13, item 4: what cannot be compared is bad input, not a verdict.
func TestCompareRefusesImpossibleInput(t *testing.T) {
	base := repeated(t, 1, 3, nil)
	for _, c := range []struct {
		name       string
		mutate     func(*Result)
		want       string
		impossible bool
	}{
		{"negative p99", func(r *Result) { r.Variants[0].LatencyMS.EndToEnd.P99 = -1 }, "p99 -1 ms", true},
		{"p99 below p50", func(r *Result) { r.Variants[0].LatencyMS.Processing.P99 = 0.5 }, "p99 0.5 ms below p90", true},
		{"more lost than confirmed", func(r *Result) { r.Variants[0].Ledger.Lost = 40000 }, "40000 lost of 30000 confirmed", true},
		{"negative count", func(r *Result) { r.Variants[1].Ledger.Duplicates = -3 }, "duplicates -3 is negative", true},
		{"NaN throughput", func(r *Result) { r.Variants[1].Throughput.CompletePerS = math.NaN() }, "complete_per_s NaN", true},
		{"runs of the wrong length", func(r *Result) { r.Variants[0].Runs["lost"] = []float64{0} }, "runs[lost] holds 1 values for 3 runs", true},
		{"another scenario", func(r *Result) { r.Scenario.Name = "steady" }, `scenario "spike", the new one of "steady"`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cur := cloneForTest(t, base)
			c.mutate(cur)
			_, err := Compare(base, cur, CompareOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrImpossible) != c.impossible {
				t.Errorf("err = %v, want %q (impossible %v)", err, c.want, c.impossible)
			}
			// The same file as the baseline is refused as well.
			if _, err := Compare(cur, base, CompareOptions{}); err == nil {
				t.Error("as the baseline: no error")
			}
		})
	}
	interrupted := cloneForTest(t, base)
	interrupted.Interrupted = true
	if _, err := Compare(interrupted, base, CompareOptions{}); err == nil || !strings.Contains(err.Error(), "baseline was interrupted") {
		t.Errorf("interrupted baseline: %v", err)
	}
	// A changed scenario file is a warning, not an error.
	cur := cloneForTest(t, base)
	cur.Scenario.SHA256 = "cd34"
	c := mustCompare(t, base, cur, CompareOptions{})
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "scenario file changed") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

// A saturated variant's throughput is the capacity of the machine: measured
// on a machine 30 % slower it is normalised by the calibration and does not
// regress; the comparison warns that the machines differ.
func TestCompareNormalisesSaturatedThroughput(t *testing.T) {
	base := repeated(t, 1, 5, nil)
	slower := func(r *Result) {
		for i := range r.Variants {
			v := &r.Variants[i]
			v.Throughput.CompletePerS *= 0.7
			v.Calibration.PublishPerS *= 0.7
			v.Calibration.ConsumePerS *= 0.7
		}
	}
	cur := repeated(t, 2, 5, slower)
	c := mustCompare(t, base, cur, CompareOptions{})
	d := deltaOf(t, c, "prefetch=10", "complete_per_s")
	if !Saturated(&cur.Variants[0]) || d.Verdict != VerdictNoChange || !d.Normalised {
		t.Errorf("saturated, slower machine: %+v", d)
	}
	if f := c.Variants[0].MachineFactor; f < 0.65 || f > 0.75 {
		t.Errorf("machine factor %v, want about 0.7", f)
	}
	if len(c.Warnings) == 0 || !strings.Contains(c.Warnings[0], "same host, other load?") || !strings.Contains(c.Warnings[0], "0.7") {
		t.Errorf("warnings %q", c.Warnings)
	}
	cur.Env.Hostname = "laptop"
	if c := mustCompare(t, base, cur, CompareOptions{}); len(c.Warnings) == 0 || !strings.HasPrefix(c.Warnings[0], "the machines differ") {
		t.Errorf("another host: warnings %q", c.Warnings)
	}
	// The same drop on the same machine is a regression.
	cur = repeated(t, 2, 5, func(r *Result) {
		for i := range r.Variants {
			r.Variants[i].Throughput.CompletePerS *= 0.7
		}
	})
	if d := deltaOf(t, mustCompare(t, base, cur, CompareOptions{}), "prefetch=10", "complete_per_s"); d.Verdict != VerdictRegressed {
		t.Errorf("30 %% less throughput on the same machine: %+v", d)
	}
	// Not saturated: throughput is the offered load, compared as it is.
	unsat := func(r *Result) {
		for i := range r.Variants {
			r.Variants[i].DrainSeconds, r.Variants[i].Peak.QueueReady = 0.05, 3
		}
	}
	base = repeated(t, 1, 5, unsat)
	cur = repeated(t, 2, 5, func(r *Result) { unsat(r); slower(r) })
	if d := deltaOf(t, mustCompare(t, base, cur, CompareOptions{}), "prefetch=10", "complete_per_s"); d.Normalised || d.Verdict != VerdictRegressed {
		t.Errorf("not saturated: %+v", d)
	}
}

func TestCompareUnmatchedAndBadOptions(t *testing.T) {
	base := passing(t)
	cur := cloneForTest(t, base)
	cur.Variants[1].Params = map[string]any{"workers.prefetch": 50}
	cur.Variants[1].Name = "prefetch=50"
	c := mustCompare(t, base, cur, CompareOptions{})
	if len(c.Variants) != 1 || len(c.OnlyInBase) != 1 || c.OnlyInBase[0] != "prefetch=100" || len(c.OnlyInNew) != 1 || c.OnlyInNew[0] != "prefetch=50" {
		t.Errorf("unmatched: %+v %v %v", c.Variants, c.OnlyInBase, c.OnlyInNew)
	}
	cur.Variants[0].Params = map[string]any{"workers.prefetch": 1}
	if _, err := Compare(base, cur, CompareOptions{}); err == nil {
		t.Error("no variant matches: want an error")
	}
	_, err := Compare(base, base, CompareOptions{MaxRegression: -1, Alpha: 2, Thresholds: map[string]float64{"p42": 0.1}, Gate: []string{"published"}})
	for _, want := range []string{"p42", "negative", "alpha", `gate on unknown metric "published"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad options: %v, want %q among the problems", err, want)
		}
	}
}

func TestCombine(t *testing.T) {
	var rs []*Result
	for i, p99 := range []float64{300, 100, 200} {
		r := passing(t)
		r.Passed = i != 2
		v := &r.Variants[0]
		v.LatencyMS.EndToEnd.P99 = p99
		v.Throughput.CompletePerS = p99 * 2
		v.Peak.WorkerRSSBytes = int64(p99) << 20
		v.Ledger.Lost = int64(i)
		v.Gates[1].Passed = i != 1
		v.Warnings = []string{"w"}
		rs = append(rs, r)
	}
	// The third run ran its variants in the other order.
	rs[2].Variants[0], rs[2].Variants[1] = rs[2].Variants[1], rs[2].Variants[0]
	m := Combine(rs)
	v := m.Variants[0]
	if v.LatencyMS.EndToEnd.P99 != 200 || v.Throughput.CompletePerS != 400 || v.Peak.WorkerRSSBytes != 200<<20 {
		t.Errorf("medians: p99 %v throughput %v rss %v", v.LatencyMS.EndToEnd.P99, v.Throughput.CompletePerS, v.Peak.WorkerRSSBytes)
	}
	if got := v.Runs["p99(end_to_end)"]; len(got) != 3 || got[0] != 0.3 || got[1] != 0.1 || got[2] != 0.2 {
		t.Errorf("runs of p99: %v", got)
	}
	if v.Ledger.Lost != 3 || v.Ledger.Published != 30000 || v.Runs["lost"][2] != 2 {
		t.Errorf("ledger: lost %d published %d (want sums), runs %v", v.Ledger.Lost, v.Ledger.Published, v.Runs["lost"])
	}
	if m.Passed || m.Repeat != 3 || v.Gates[1].Passed || !v.Gates[0].Passed || len(v.Warnings) != 3 || v.Warnings[2] != "run 3: w" {
		t.Errorf("passed %v repeat %d gates %+v warnings %q", m.Passed, m.Repeat, v.Gates, v.Warnings)
	}
	h, err := DecodeHistogram(v.Histograms[KindProcessing])
	if err != nil || h.TotalCount() != 15000 {
		t.Errorf("merged histogram: %v, %v", h, err)
	}
	if rs[0].Variants[0].LatencyMS.EndToEnd.P99 != 300 || rs[0].Variants[0].Runs != nil {
		t.Error("Combine modified its input")
	}
	if err := m.Check(); err != nil {
		t.Errorf("combined result: %v", err)
	}
	if Combine(nil) != nil {
		t.Error("Combine(nil) != nil")
	}
}

func TestWithin(t *testing.T) {
	r := passing(t)
	a, b, err := Within(r, "workers.prefetch")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Variants) != 1 || len(b.Variants) != 1 || len(a.Variants[0].Params) != 0 || a.Variants[0].Name != "default" ||
		b.Variants[0].Peak.WorkerRSSBytes != 100<<20 {
		t.Fatalf("split: a %+v b %+v", a.Variants, b.Variants)
	}
	c := mustCompare(t, a, b, CompareOptions{})
	if len(c.Variants) != 1 || c.Variants[0].Name != "default" {
		t.Errorf("A/B comparison: %+v", c.Variants)
	}
	if _, _, err := Within(r, "workers.concurrency"); err == nil || !strings.Contains(err.Error(), "no such matrix key") {
		t.Errorf("missing key: %v", err)
	}
	r.Variants = append(r.Variants, r.Variants[0])
	r.Variants[2].Params = map[string]any{"workers.prefetch": 1}
	if _, _, err := Within(r, "workers.prefetch"); err == nil || !strings.Contains(err.Error(), "more than two values") {
		t.Errorf("three values: %v", err)
	}
}

// Results written before repeats, calibration and worker CPU existed still
// read, check and compare: the committed spike baseline against itself.
func TestCompareOldResult(t *testing.T) {
	old, err := ReadFile("../scenarios/baselines/spike.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Check(); err != nil {
		t.Fatalf("old result: %v", err)
	}
	c := mustCompare(t, old, old, CompareOptions{})
	if c.Regressed() {
		t.Fatalf("old result against itself:\n%s", printed(t, c))
	}
	d := deltaOf(t, c, "workers.prefetch=10", "cpu_per_1k_jobs")
	if d.Verdict != VerdictNotCompared || d.Note != notMeasured {
		t.Errorf("cpu_per_1k_jobs of a result without CPU: %+v", d)
	}
	if d := deltaOf(t, c, "workers.prefetch=10", "p50(processing)"); d.Verdict != VerdictNoChange || d.N != 1 {
		t.Errorf("p50(processing): %+v", d)
	}
}
