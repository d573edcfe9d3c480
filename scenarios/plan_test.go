package scenarios

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	src := `name: p
task: bench.job.process
workers: {processes: 2, concurrency: 4, retry: {max_attempts: 3, min_delay: 1s, max_delay: 1500ms}}
job: {work: 10ms, fail_rate: 0.5, dependency_calls: 1}
dependency: {latency: 10ms}
load:
  - spike: {jobs: 1000}
  - steady: {rate: 100/s, for: 10s}
faults:
  - {at: 2s, for: 3s, target: dependency, toxic: latency, latency: 1s}
  - {at: 4s, target: worker, action: kill}
matrix: {workers.concurrency: [4, 1]}
drain_timeout: 30s
`
	s, err := Parse("p.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Variants) != 2 {
		t.Fatalf("%d variants", len(p.Variants))
	}
	v := p.Variants[0]
	if v.Name != "workers.concurrency=4" || v.Jobs != 2000 || v.Load != 10*time.Second {
		t.Errorf("variant %s: %d jobs, load %s", v.Name, v.Jobs, v.Load)
	}
	// An attempt takes 20 ms; 1.75 attempts a job (1 + 0.5 + 0.25); 2 × 4
	// handlers: 8 / (0.02 × 1.75) ≈ 228.6 jobs/s.
	if math.Abs(v.Capacity-8/(0.02*1.75)) > 0.01 {
		t.Errorf("capacity %.2f", v.Capacity)
	}
	// 2000 jobs − 228.6/s × 10 s leaves none; a job retried twice waits 1 s + 1.5 s.
	if v.Drain != 2500*time.Millisecond || v.Estimate != PlanNodeBoot+PlanWorkersUp+10*time.Second+2500*time.Millisecond || v.Max != PlanNodeBoot+PlanWorkersUp+40*time.Second {
		t.Errorf("drain %s, estimate %s, max %s", v.Drain, v.Estimate, v.Max)
	}
	if len(v.Phases) != 2 || v.Phases[1].Start != 0 || v.Phases[1].End != 10*time.Second || v.Phases[0].Detail != "1000 at once" || v.Phases[1].Detail != "100/s" {
		t.Errorf("phases %+v", v.Phases)
	}
	if len(v.Faults) != 2 || v.Faults[0].Until != 5*time.Second || v.Faults[1].Until != 4*time.Second || !strings.HasPrefix(v.Faults[0].What, "latency") || v.Faults[1].What != "kill" {
		t.Errorf("faults %+v", v.Faults)
	}
	// One handler per process: 2 / 0.035 ≈ 57/s cannot finish 2000 jobs in 10 s:
	// 25 s of backlog and 2.5 s of backoff, within the 30 s timeout.
	w := p.Variants[1]
	if w.Drain.Round(100*time.Millisecond) != 27500*time.Millisecond || len(w.Warnings) != 0 {
		t.Errorf("concurrency 1: drain %s, warnings %q", w.Drain, w.Warnings)
	}
	if p.Estimate != v.Estimate+w.Estimate || p.Max != v.Max+w.Max {
		t.Errorf("plan %s / %s", p.Estimate, p.Max)
	}
	// A drain beyond its timeout is capped and said so.
	s2, err := Parse("p.yaml", []byte(src), []string{"load.0.spike.jobs=100000"})
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := s2.Plan(false)
	if v := p2.Variants[0]; v.Estimate != PlanWorkersUp+10*time.Second+30*time.Second || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "more than drain_timeout 30s") {
		t.Errorf("capped drain: estimate %s, warnings %q", v.Estimate, v.Warnings)
	}
}

// An own worker's pace is unknown before it runs: the plan says what runs.
func TestPlanOwnWorker(t *testing.T) {
	s, err := Parse("s.yaml", []byte(ownBase+"workers: {command: [./w, -v], processes: 3}\ncompletion: {event: x.done}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan(false)
	if err != nil {
		t.Fatal(err)
	}
	if v := p.Variants[0]; v.Own != "3 × ./w -v, black-box" || !math.IsInf(v.Capacity, 1) || v.Drain != 0 {
		t.Errorf("plan %+v", v)
	}
}
