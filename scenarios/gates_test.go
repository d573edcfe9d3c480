package scenarios

import (
	"strings"
	"testing"
)

const whenSrc = `name: w
task: bench.job.process
load: [{spike: {jobs: 10}}]
matrix: {workers.prefetch: [0, 10], workers.concurrency: [1, 8]}
gates:
  - lost == 0
  - {expr: "peak(worker_rss) < 64MiB", when: WHEN}
`

// A when that no variant matches is an error naming the matrix, not a gate
// that silently never runs.
func TestGateWhenMustMatchTheMatrix(t *testing.T) {
	for _, tc := range []struct {
		name, when string
		want       []string
	}{
		{"misspelt key", "{workers.prefech: 1}", []string{"w.yaml:7:47:", "workers.prefech is not a matrix key",
			"the matrix has workers.prefetch: [0, 10], workers.concurrency: [1, 8]", "did you mean workers.prefetch?"}},
		{"value not in the matrix", "{workers.prefetch: 5}", []string{"w.yaml:7:47:", "workers.prefetch is never 5", "its values are [0, 10]"}},
		{"second key wrong", "{workers.prefetch: 10, job.work: 5ms}", []string{"job.work is not a matrix key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("w.yaml", []byte(strings.Replace(whenSrc, "WHEN", tc.when, 1)), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	noMatrix := "name: w\ntask: bench.job.process\nload: [{spike: {jobs: 10}}]\ngates:\n  - {expr: lost == 0, when: {workers.prefetch: 10}}\n"
	if _, err := Parse("w.yaml", []byte(noMatrix), nil); err == nil || !strings.Contains(err.Error(), "the scenario has no matrix") {
		t.Errorf("when without a matrix: %v", err)
	}
	// Written values compare as values: 10 and "10" are the same key value.
	if _, err := Parse("w.yaml", []byte(strings.Replace(whenSrc, "WHEN", `{workers.prefetch: "10"}`, 1)), nil); err != nil {
		t.Errorf("quoted value: %v", err)
	}
}

// A --set that pins a matrix key takes the axis away: the gate for another
// value is skipped, with the reason, and the gate for the pinned value runs.
func TestGateWhenPinnedBySet(t *testing.T) {
	src := strings.Replace(whenSrc, "WHEN", "{workers.prefetch: 10}", 1)
	for _, tc := range []struct {
		set      string
		applies  bool
		skip     string
		variants int
	}{
		{"workers.prefetch=50", false, "--set pinned workers.prefetch to 50; the gate is for 10", 2},
		{"workers.prefetch=10", true, "", 2},
	} {
		s, err := Parse("w.yaml", []byte(src), []string{tc.set})
		if err != nil {
			t.Fatal(err)
		}
		vs, err := s.Variants()
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != tc.variants {
			t.Fatalf("--set %s: %d variants, want %d", tc.set, len(vs), tc.variants)
		}
		for _, v := range vs {
			g := v.Scenario.Gates[1]
			applies, skip := v.Scenario.GateApplies(g, v.Params)
			if applies != tc.applies || skip != tc.skip {
				t.Errorf("--set %s, %s: applies %v skip %q; want %v %q", tc.set, v.Name, applies, skip, tc.applies, tc.skip)
			}
		}
	}
	// A variant whose own matrix value differs is simply not the gate's.
	s, err := Parse("w.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := s.Variants()
	if applies, skip := vs[0].Scenario.GateApplies(vs[0].Scenario.Gates[1], vs[0].Params); applies || skip != "" {
		t.Errorf("%s: applies %v skip %q; want neither", vs[0].Name, applies, skip)
	}
}

func TestAbortGates(t *testing.T) {
	base := "name: a\ntask: bench.job.process\nload: [{spike: {jobs: 10}}]\ngates:\n  - GATE\n"
	for _, tc := range []struct {
		gate string
		err  string
	}{
		{`{expr: "p99(end_to_end) < 2s", abort: true}`, ""},
		{`{expr: "peak(worker_rss) < 200MiB", abort: true}`, ""},
		{`{expr: "duplicates == 0", abort: true}`, ""},
		{`{expr: "lost == 0", abort: false}`, ""},
		{`{expr: "lost == 0", abort: true}`, "5:25: gates.0: abort: lost is known only when the variant ends"},
		{`{expr: "drain_seconds < 60", abort: true}`, "drain_seconds is known only when the variant ends"},
		{`{expr: "succeeded > 100", abort: true}`, `succeeded only grows during a run, so "succeeded > 100" can only be judged at the end`},
		{`{expr: "p99(end_to_end) == 2s", abort: true}`, "moves either way"},
		{`{expr: "lost == 0", abort: yes}`, "must be true or false"},
	} {
		s, err := Parse("a.yaml", []byte(strings.Replace(base, "GATE", tc.gate, 1)), nil)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.gate, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.gate, err, tc.err)
		case tc.err == "" && s.Gates[0].Abort != strings.Contains(tc.gate, "abort: true"):
			t.Errorf("%s: Abort = %v", tc.gate, s.Gates[0].Abort)
		}
	}
}

// The effective scenario is what runs: the file with the --set overrides, a
// pinned matrix key out of the matrix; it parses back to the same scenario.
func TestEffectiveScenario(t *testing.T) {
	src := strings.Replace(whenSrc, "WHEN", "{workers.prefetch: 10}", 1)
	sets := []string{"workers.prefetch=50", "load.0.spike.jobs=20"}
	s, err := Parse("w.yaml", []byte(src), sets)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Overrides, " ") != strings.Join(sets, " ") {
		t.Errorf("overrides %q", s.Overrides)
	}
	eff := string(s.Effective)
	for _, want := range []string{"prefetch: 50", "jobs: 20", "workers.concurrency: [1, 8]"} {
		if !strings.Contains(eff, want) {
			t.Errorf("effective scenario lacks %q:\n%s", want, eff)
		}
	}
	if strings.Contains(eff, "workers.prefetch: [") {
		t.Errorf("effective scenario still varies the pinned key:\n%s", eff)
	}
	if s.EffectiveSHA256 == s.SHA256 || len(s.EffectiveSHA256) != 64 {
		t.Errorf("effective sha256 %q (file %q)", s.EffectiveSHA256, s.SHA256)
	}
	// The effective text parses and runs as the same variants: the gate for
	// prefetch 10, skipped under the pinned 50, is not in it.
	back, err := Parse("effective.yaml", s.Effective, nil)
	if err != nil {
		t.Fatalf("effective scenario does not parse: %v\n%s", err, eff)
	}
	if len(back.Gates) != 1 || back.Gates[0].Source != "lost == 0" {
		t.Errorf("effective gates %+v", back.Gates)
	}
	// Pinned to the gate's value, the gate stays and applies without its when.
	s10, err := Parse("w.yaml", []byte(src), []string{"workers.prefetch=10"})
	if err != nil {
		t.Fatal(err)
	}
	back10, err := Parse("effective.yaml", s10.Effective, nil)
	if err != nil {
		t.Fatalf("effective scenario does not parse: %v\n%s", err, s10.Effective)
	}
	if len(back10.Gates) != 2 || back10.Gates[1].When != nil {
		t.Errorf("effective gates with prefetch pinned to 10: %+v\n%s", back10.Gates, s10.Effective)
	}
	a, _ := s.Variants()
	b, _ := back.Variants()
	if len(a) != len(b) || a[0].Name != b[0].Name || b[0].Scenario.Workers.Prefetch != 50 || b[0].Scenario.TotalJobs() != 20 {
		t.Errorf("effective scenario runs differently: %d/%d variants, %+v", len(a), len(b), b[0].Scenario.Workers)
	}
}
