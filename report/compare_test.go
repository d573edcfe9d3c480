package report

import (
	"bytes"
	"encoding/json"
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

func verdictOf(t *testing.T, c *Comparison, variant, metric string) MetricDelta {
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

func TestCompareAgainstItself(t *testing.T) {
	r := syntheticResult(t)
	// The copy went through JSON: params are float64 there, int in r; they must still match.
	c, err := Compare(cloneForTest(t, r), r, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Regressed() || len(c.Variants) != 2 || len(c.OnlyInBase)+len(c.OnlyInNew) != 0 {
		t.Fatalf("self comparison: regressed %v, %d variants, unmatched %v %v", c.Regressed(), len(c.Variants), c.OnlyInBase, c.OnlyInNew)
	}
	var b bytes.Buffer
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no regression") || strings.Contains(b.String(), "REGRESSED") {
		t.Errorf("print:\n%s", b.String())
	}
}

func TestCompareDetectsP99Regression(t *testing.T) {
	base := syntheticResult(t)
	cur := cloneForTest(t, base)
	cur.Variants[1].LatencyMS.EndToEnd.P99 *= 2
	c, err := Compare(base, cur, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Regressed() {
		t.Fatal("doubled p99: not reported as a regression")
	}
	if m := verdictOf(t, c, "prefetch=100", "p99(end_to_end)"); m.Verdict != VerdictRegressed || m.Change < 0.99 || m.Change > 1.01 {
		t.Errorf("p99 delta %+v", m)
	}
	if m := verdictOf(t, c, "prefetch=10", "p99(end_to_end)"); m.Verdict != VerdictOK {
		t.Errorf("untouched variant: %+v", m)
	}
	var b bytes.Buffer
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "REGRESSED") || !strings.Contains(b.String(), "+100.0%") {
		t.Errorf("print:\n%s", b.String())
	}
	// A per-metric threshold above the change lets it pass.
	c, err = Compare(base, cur, CompareOptions{Thresholds: map[string]float64{"p99(end_to_end)": 1.5}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Regressed() {
		t.Error("p99 threshold 150%: still regressed")
	}
}

func TestCompareNoise(t *testing.T) {
	base := syntheticResult(t)
	cur := cloneForTest(t, base)
	v := &cur.Variants[0]
	v.Throughput.CompletePerS *= 0.5 // higher is better: a regression
	v.DrainSeconds = 0               // both under 1 s? no: base is 4.5 s, so an improvement
	c, err := Compare(base, cur, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := verdictOf(t, c, "prefetch=10", "complete_per_s"); m.Verdict != VerdictRegressed {
		t.Errorf("halved throughput: %+v", m)
	}
	if m := verdictOf(t, c, "prefetch=10", "drain_seconds"); m.Verdict != VerdictImproved {
		t.Errorf("drain to 0: %+v", m)
	}

	// Few samples: latency not gated. Tiny absolute changes: not gated.
	base, cur = syntheticResult(t), syntheticResult(t)
	for _, r := range []*Result{base, cur} {
		r.Variants[0].LatencyMS.EndToEnd.Count = 10
		r.Variants[1].DrainSeconds = 0.2
		r.Variants[1].LatencyMS.EndToEnd.P50 = 0.3
	}
	cur.Variants[0].LatencyMS.EndToEnd.P99 *= 3
	cur.Variants[1].DrainSeconds = 0.9
	cur.Variants[1].LatencyMS.EndToEnd.P50 = 0.9
	cur.Variants[1].Peak.WorkerRSSBytes += 512 << 10
	c, err = Compare(base, cur, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Regressed() {
		var b bytes.Buffer
		_ = c.Print(&b)
		t.Errorf("noise reported as a regression:\n%s", b.String())
	}
	for _, want := range []struct{ variant, metric string }{
		{"prefetch=10", "p99(end_to_end)"}, {"prefetch=100", "drain_seconds"}, {"prefetch=100", "p50(end_to_end)"},
	} {
		if m := verdictOf(t, c, want.variant, want.metric); m.Verdict != VerdictNotGated || m.Note == "" {
			t.Errorf("%s %s: %+v, want not gated", want.variant, want.metric, m)
		}
	}
}

func TestCompareUnmatchedAndBadOptions(t *testing.T) {
	base := syntheticResult(t)
	cur := cloneForTest(t, base)
	cur.Variants[1].Params = map[string]any{"workers.prefetch": 50}
	cur.Variants[1].Name = "prefetch=50"
	c, err := Compare(base, cur, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Variants) != 1 || len(c.OnlyInBase) != 1 || c.OnlyInBase[0] != "prefetch=100" || len(c.OnlyInNew) != 1 || c.OnlyInNew[0] != "prefetch=50" {
		t.Errorf("unmatched: %+v %v %v", c.Variants, c.OnlyInBase, c.OnlyInNew)
	}
	cur.Variants[0].Params = map[string]any{"workers.prefetch": 1}
	if _, err := Compare(base, cur, CompareOptions{}); err == nil {
		t.Error("no variant matches: want an error")
	}
	_, err = Compare(base, base, CompareOptions{MaxRegression: -1, Thresholds: map[string]float64{"p42": 0.1}})
	if err == nil || !strings.Contains(err.Error(), "p42") || !strings.Contains(err.Error(), "negative") {
		t.Errorf("bad options: %v, want both problems reported", err)
	}
}

func TestMedian(t *testing.T) {
	var rs []*Result
	for i, p99 := range []float64{300, 100, 200} {
		r := syntheticResult(t)
		r.Passed = i != 2
		r.Variants[0].LatencyMS.EndToEnd.P99 = p99
		r.Variants[0].Throughput.CompletePerS = p99 * 2
		r.Variants[0].Peak.WorkerRSSBytes = int64(p99) << 20
		rs = append(rs, r)
	}
	m := Median(rs)
	v := m.Variants[0]
	if v.LatencyMS.EndToEnd.P99 != 200 || v.Throughput.CompletePerS != 400 || v.Peak.WorkerRSSBytes != 200<<20 {
		t.Errorf("median: p99 %v throughput %v rss %v", v.LatencyMS.EndToEnd.P99, v.Throughput.CompletePerS, v.Peak.WorkerRSSBytes)
	}
	if m.Passed {
		t.Error("median of runs with a failure: passed")
	}
	if rs[0].Variants[0].LatencyMS.EndToEnd.P99 != 300 {
		t.Error("Median modified its input")
	}
	if Median(nil) != nil {
		t.Error("Median(nil) != nil")
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of even count = %v", got)
	}
}
