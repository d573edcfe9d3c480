package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/internal/maxrate"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// A real search: one handler at 20 ms a job finishes at most 50 jobs/s, so
// the search misses some step and brackets its max rate below 60/s (or
// stops at the generator, saying so); every step ran into its own directory.
func TestMaxRateSearchRuns(t *testing.T) {
	task := "bench.job." + brokertest.Name(t, "search")
	doc := `
name: search-test
app: bench
task: ` + task + `
workers: {processes: 1, concurrency: 1, prefetch: 5}
job: {work: 20ms}
load:
  - steady: {rate: 10/s, for: 1s}
slo: {"p99(end_to_end)": 200ms}
search: {rate: {from: 10/s, to: 160/s}, settle: 1s, measure: 3s, precision: 0.25, max_steps: 5}
drain_timeout: 30s
`
	sc, err := scenarios.Parse("test.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	r, err := New(sc, Options{AMQPURL: brokertest.URL(t), OutDir: out, WorkerArgv: []string{exe, "worker"}, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	v := res.Variants[0]
	s := v.Search
	if s == nil {
		t.Fatal("no search in the result")
	}
	if n := len(s.Steps); n < 1 || n > 5 {
		t.Fatalf("%d steps, want 1–5: %+v", n, s.Steps)
	}
	for i := range s.Steps {
		if _, err := os.Stat(filepath.Join(out, "default", fmt.Sprintf("step-%02d", i+1))); err != nil {
			t.Errorf("step %d has no directory: %v", i+1, err)
		}
	}
	if res.Capacity != nil {
		t.Error("a search result ranks cells at one rate")
	}
	if s.Ceiling == maxrate.CeilingHarness {
		// A machine too busy for the generator: the search must say so and stop there.
		if last := s.Steps[len(s.Steps)-1]; !last.HarnessBound || last.Met {
			t.Errorf("harness ceiling, but the last step %+v was not the harness's", last)
		}
		t.Logf("the generator fell behind on this machine: %s", s.Note)
		return
	}
	// The handler's 50/s is a hard ceiling; how far below it the search
	// lands depends on how busy the machine is (the simulated capacity of
	// internal/maxrate's tests pins the precision).
	if s.MaxRate >= 60 || s.MissRate <= s.MaxRate || (s.Ceiling != maxrate.CeilingSLO && s.Ceiling != maxrate.CeilingSteps && s.Ceiling != maxrate.CeilingBelow) {
		t.Errorf("max rate %g, miss rate %g, ceiling %s (%s): want bracketed below 60/s", s.MaxRate, s.MissRate, s.Ceiling, s.Note)
	}
	t.Logf("max rate %g/s: %s", s.MaxRate, s.Note)
	missed := 0
	for i, st := range s.Steps {
		if st.Met && st.Rate > s.MaxRate {
			t.Errorf("step %d met at %g/s, above the max rate", i+1, st.Rate)
		}
		if !st.Met {
			missed++
		}
	}
	if missed == 0 {
		t.Error("no step missed: the search never found the handler's limit")
	}
	if s.MaxRate > 0 && (v.SLO == nil || !v.SLO.Met || v.SLO.Checks[0].Target != s.MaxRate) {
		t.Errorf("the variant is not the step at the max rate: verdict %+v", v.SLO)
	}
}

// Late sends end the search only when they alone could explain the miss.
func TestJudgeStepBlamesTheHarnessOnlyForItsOwnDelay(t *testing.T) {
	sc, err := scenarios.Parse("t.yaml", []byte(`name: t
task: bench.job.process
load:
  - steady: {rate: 100/s, for: 5s}
slo: {"p99(end_to_end)": 200ms}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	late := int64(20)
	step := func(p99ms, lateMaxMS, publish, complete float64, harnessBound bool) maxrate.Step {
		rv := &report.Variant{Ledger: report.Ledger{Published: 500, Finished: 500}, HarnessBound: harnessBound,
			LateSends: late, LateMaxMS: lateMaxMS, Throughput: report.Throughput{PublishPerS: publish, CompletePerS: complete},
			LatencyMS: report.Latencies{EndToEnd: report.Summary{Count: 500, P99: p99ms}}}
		st, _ := judgeStep(sc, rv, nil, 100)
		return st
	}
	if st := step(3300, 70, 100, 44, true); st.HarnessBound || st.Met {
		t.Errorf("workers 3 s behind with sends 70 ms late: %+v, want the workers' miss", st)
	}
	if st := step(260, 150, 100, 100, true); !st.HarnessBound || st.Met {
		t.Errorf("p99 260 ms with sends 150 ms late: %+v, want the harness's", st)
	}
	if st := step(150, 150, 100, 100, true); !st.Met {
		t.Errorf("met despite late sends: %+v, want met", st)
	}
	// One late send at the end of a short step stretches its publish rate: not the harness's ceiling.
	if st := step(50, 300, 94, 94, false); st.HarnessBound || !st.Met {
		t.Errorf("published 94/s of 100/s with 20 of 500 sends late: %+v, want met", st)
	}
	late = 300
	if st := step(50, 0, 80, 80, true); !st.HarnessBound || st.Met {
		t.Errorf("published 80/s of 100/s with 300 of 500 sends late: %+v, want the harness's", st)
	}
}
