package runner

import (
	"strings"
	"testing"

	"github.com/benchmq/bench/chaos/timeline"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// A gate that cannot be judged is skipped with its reason, never passed.
func TestEvalGatesSkipsWhatItCannotJudge(t *testing.T) {
	src := "name: g\ntask: bench.job.process\nload: [{spike: {jobs: 10}}]\nmatrix: {workers.prefetch: [0, 10]}\n" +
		"gates:\n  - lost == 0\n  - {expr: \"peak(worker_rss) < 64MiB\", when: {workers.prefetch: 10}}\n  - max(end_to_end) < 1s\n"
	sc, err := scenarios.Parse("g.yaml", []byte(src), []string{"workers.prefetch=50"})
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := sc.Variants()
	rv := report.Variant{Params: vs[0].Params, LatencyMS: report.Latencies{EndToEnd: report.Summary{Count: 10, Max: 20}}}
	evalGates(vs[0].Scenario, &rv)
	if len(rv.Gates) != 3 || !rv.Passed {
		t.Fatalf("gates %+v, passed %v", rv.Gates, rv.Passed)
	}
	if g := rv.Gates[1]; !g.Skipped || g.Passed || g.Reason != "--set pinned workers.prefetch to 50; the gate is for 10" {
		t.Errorf("pinned gate %+v", g)
	}

	// An aborted variant: the gates that need the drain are skipped, the rest judged.
	rv = report.Variant{Params: vs[0].Params, Ledger: report.Ledger{Lost: 7}, LatencyMS: report.Latencies{EndToEnd: report.Summary{Count: 10, Max: 2000}},
		Aborted: &report.Abort{Gate: "max(end_to_end) < 1s", AtS: 3.5}}
	evalGates(vs[0].Scenario, &rv)
	if rv.Passed {
		t.Error("an aborted variant passed")
	}
	if g := rv.Gates[0]; !g.Skipped || g.Reason != "the variant was aborted at 3.5 s, before lost was known" {
		t.Errorf("lost gate of an aborted variant: %+v", g)
	}
	if g := rv.Gates[2]; g.Skipped || g.Passed || g.Value != 2 {
		t.Errorf("max gate of an aborted variant: %+v", g)
	}
}

// A figure that was not reached or cannot be observed is null with a reason.
func TestFaultFiguresNullWithReason(t *testing.T) {
	for _, tc := range []struct {
		m              timeline.Metrics
		recovery, note string
	}{
		{timeline.Metrics{RecoverySeconds: 2.5, DetectSeconds: 0}, "2.5", ""},
		{timeline.Metrics{RecoverySeconds: -1, DetectSeconds: -1}, "", "not recovered: the completion rate was not back to 90% of its rate before the fault by the end of the run"},
		{timeline.Metrics{RecoverySeconds: -1, DetectSeconds: -1, NoBaseline: true}, "", "not observable: nothing completed in the 5s before the fault"},
	} {
		f := resultFault(tc.m)
		switch {
		case tc.recovery != "" && (f.RecoverySeconds == nil || f.RecoveryNote != ""):
			t.Errorf("%+v: recovery %v %q", tc.m, f.RecoverySeconds, f.RecoveryNote)
		case tc.recovery == "" && (f.RecoverySeconds != nil || !strings.HasPrefix(f.RecoveryNote, tc.note)):
			t.Errorf("%+v: recovery %v, note %q, want null and %q", tc.m, f.RecoverySeconds, f.RecoveryNote, tc.note)
		}
		if (tc.m.DetectSeconds >= 0) != (f.DetectSeconds != nil) || (f.DetectSeconds == nil && f.DetectNote == "") {
			t.Errorf("%+v: detect %v %q", tc.m, f.DetectSeconds, f.DetectNote)
		}
	}
}
