package report

import (
	"strings"
	"testing"
)

// cell is a variant with the figures an SLO judges.
func cell(name string, p99ms, cpuSeconds float64, done int64, rss int64, cores float64) Variant {
	return Variant{Name: name, LatencyMS: Latencies{EndToEnd: Summary{Count: done, P99: p99ms}},
		Ledger:     Ledger{Finished: done, Published: done},
		Throughput: Throughput{PublishPerS: float64(done) / 10, CompletePerS: float64(done) / 10},
		Peak:       Peak{WorkerRSSBytes: rss, WorkerCPUCores: cores}, WorkerCPUSeconds: cpuSeconds}
}

var testSLO = SLO{Rate: 1000, Objectives: []Objective{
	{Metric: "p99(end_to_end)", Target: 0.25, Source: "250ms"},
	{Metric: "peak(worker_rss)", Target: 128 << 20, Source: "128MiB"},
}}

func TestJudgeMeetsAndMisses(t *testing.T) {
	ok := cell("ok", 163, 5, 10000, 64<<20, 0.4)
	v := testSLO.Judge(&ok, 2, 8)
	if !v.Met || v.Reason != "" || len(v.Checks) != 3 {
		t.Fatalf("verdict = %+v, want met with 3 checks", v)
	}
	if c := v.Checks[1]; c.Metric != "p99(end_to_end)" || c.Margin < 0.34 || c.Margin > 0.35 {
		t.Errorf("p99 check = %+v, want 34.8 %% headroom", c)
	}
	// 5 CPU-s for 10,000 jobs is 0.5 s per 1k: 1000/s takes 0.5 cores, 2 processes at 0.4 each.
	if v.CoresAtRate != 0.5 || v.InstancesAtRate != 2 {
		t.Errorf("cores %g instances %d, want 0.5 and 2", v.CoresAtRate, v.InstancesAtRate)
	}

	slow := cell("slow", 500, 5, 8000, 200<<20, 0.9) // 800/s: behind the 1000/s
	v = testSLO.Judge(&slow, 1, 8)
	if v.Met {
		t.Fatal("a cell over every target meets the SLO")
	}
	for _, want := range []string{"falls behind by 20 %", "p99(end_to_end) 500.00 ms, target ≤ 250.00 ms (misses by 100 %)", "peak(worker_rss) 200.0 MiB, target ≤ 128.0 MiB (misses by 56 %)"} {
		if !strings.Contains(v.Reason, want) {
			t.Errorf("reason %q lacks %q", v.Reason, want)
		}
	}
}

func TestJudgeUnmeasuredMisses(t *testing.T) {
	v := cell("none", 0, 0, 0, 0, 0)
	v.LatencyMS.EndToEnd.Count = 0
	got := (&SLO{Objectives: testSLO.Objectives[:1]}).Judge(&v, 1, 1)
	if got.Met || !strings.Contains(got.Reason, "not measured") {
		t.Errorf("verdict = %+v, want a miss: not measured", got)
	}
}

func TestJudgeCaveats(t *testing.T) {
	v := cell("late", 100, 5, 10000, 1<<20, 0.5)
	v.HarnessBound, v.LateSends = true, 465
	if got := testSLO.Judge(&v, 1, 1); !got.Met || !strings.Contains(got.Caveat, "465 late sends") {
		t.Errorf("verdict = %+v, want met with the harness caveat", got)
	}
	v = cell("under", 100, 5, 10000, 1<<20, 0.5)
	v.Throughput.PublishPerS = 500
	if got := testSLO.Judge(&v, 1, 1); !strings.Contains(got.Caveat, "the load offered 500.0/s") {
		t.Errorf("caveat = %q", got.Caveat)
	}
}

func TestPlanCapacityOrdersByCost(t *testing.T) {
	r := &Result{SLO: &testSLO}
	add := func(v Variant, procs, conc int) {
		v.SLO = testSLO.Judge(&v, procs, conc)
		r.Variants = append(r.Variants, v)
	}
	add(cell("dear-cpu", 100, 9, 10000, 10<<20, 0.5), 1, 8)    // 0.9 s/1k
	add(cell("cheap-big", 100, 5, 10000, 90<<20, 0.5), 2, 32)  // 0.5 s/1k, 64 slots
	add(cell("cheap-small", 100, 5, 10000, 90<<20, 0.5), 2, 8) // 0.5 s/1k, 16 slots, more RSS
	add(cell("cheap-lean", 100, 5, 10000, 20<<20, 0.5), 2, 8)  // 0.5 s/1k, 16 slots, less RSS
	add(cell("no-cpu", 100, 0, 10000, 1<<20, 0), 1, 1)         // unmeasured: last
	add(cell("too-slow", 900, 1, 10000, 1<<20, 0.5), 1, 1)     // misses
	c := PlanCapacity(r)
	var order []string
	for _, m := range c.Meeting {
		order = append(order, m.Variant)
	}
	if got := strings.Join(order, " "); got != "cheap-lean cheap-small cheap-big dear-cpu no-cpu" {
		t.Errorf("order = %s", got)
	}
	if c.Recommended != "cheap-lean" {
		t.Errorf("recommended %q", c.Recommended)
	}
	if len(c.Missing) != 1 || c.Missing[0].Variant != "too-slow" || !strings.Contains(c.Missing[0].Reason, "p99(end_to_end) 900.00 ms") {
		t.Errorf("missing = %+v", c.Missing)
	}
	if PlanCapacity(&Result{}) != nil {
		t.Error("a result without an SLO has a capacity plan")
	}
}

func TestPlanCapacityNoneMeets(t *testing.T) {
	r := &Result{SLO: &testSLO}
	v := cell("slow", 900, 1, 10000, 1<<20, 0.5)
	v.SLO = testSLO.Judge(&v, 1, 1)
	r.Variants = []Variant{v}
	if c := PlanCapacity(r); c.Recommended != "" || len(c.Meeting) != 0 {
		t.Errorf("plan = %+v, want no recommendation", c)
	}
}

func TestJUnitCarriesTheVerdict(t *testing.T) {
	r := &Result{Scenario: Scenario{Name: "cap"}, SLO: &testSLO}
	for _, v := range []Variant{cell("fast", 100, 5, 10000, 1<<20, 0.5), cell("slow", 900, 5, 10000, 1<<20, 0.5)} {
		v.SLO = testSLO.Judge(&v, 1, 1)
		r.Variants = append(r.Variants, v)
	}
	r.Capacity = PlanCapacity(r)
	var b strings.Builder
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`<property name="slo" value="meets">`, `<property name="slo.recommended" value="true">`,
		`<property name="slo" value="misses">`, `<property name="slo.reason" value="p99(end_to_end) 900.00 ms`} {
		if !strings.Contains(out, want) {
			t.Errorf("junit lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "<failure") {
		t.Error("a missed SLO is a junit failure")
	}
}

// A miss far beyond the target reads as a multiple; when every variant
// misses with the generator behind, the answer says the harness could not
// offer the load.
func TestMissesFarBeyondAndAllHarnessBound(t *testing.T) {
	r := &Result{SLO: &testSLO}
	for _, name := range []string{"a", "b"} {
		v := cell(name, 41650, 5, 10000, 1<<20, 0.5)
		v.HarnessBound, v.LateSends = true, 14403
		v.SLO = testSLO.Judge(&v, 1, 8)
		r.Variants = append(r.Variants, v)
	}
	if got := r.Variants[0].SLO.Reason; !strings.Contains(got, "p99(end_to_end) 41.65 s, target ≤ 250.00 ms (167× the target)") {
		t.Errorf("reason %q", got)
	}
	c := PlanCapacity(r)
	if c.Recommended != "" || !strings.Contains(c.Note, "the load generator fell behind in every variant") {
		t.Errorf("plan %+v", c)
	}
	r.Variants[1].SLO.Caveat = ""
	if c := PlanCapacity(r); c.Note != "" {
		t.Errorf("note %q with one variant measured cleanly", c.Note)
	}
}
