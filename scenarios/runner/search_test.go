package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/internal/maxrate"
	"github.com/benchmq/bench/scenarios"
)

// A real search: one handler at 20 ms a job finishes at most 50 jobs/s, so
// the search meets low rates, misses some step, and its max rate lies below
// 60/s; every step ran into its own directory.
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
	if n := len(s.Steps); n < 4 || n > 5 {
		t.Fatalf("%d steps, want 4–5: %+v", n, s.Steps)
	}
	if s.MaxRate < 20 || s.MaxRate >= 60 || (s.Ceiling != maxrate.CeilingSLO && s.Ceiling != maxrate.CeilingSteps) {
		t.Errorf("max rate %g ceiling %s (%s), want 20–60/s bracketed", s.MaxRate, s.Ceiling, s.Note)
	}
	missed := 0
	for i, st := range s.Steps {
		if st.Met && st.Rate > s.MaxRate {
			t.Errorf("step %d met at %g/s, above the max rate", i+1, st.Rate)
		}
		if !st.Met {
			missed++
		}
		if _, err := os.Stat(filepath.Join(out, "default", "step-0"+string(rune('1'+i)))); err != nil {
			t.Errorf("step %d has no directory: %v", i+1, err)
		}
	}
	if missed == 0 {
		t.Error("no step missed: the search never found the handler's limit")
	}
	if v.SLO == nil || !v.SLO.Met || v.SLO.Checks[0].Target != s.MaxRate {
		t.Errorf("the variant is not the step at the max rate: verdict %+v", v.SLO)
	}
	if res.Capacity != nil {
		t.Error("a search result ranks cells at one rate")
	}
}
