package runner

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

func TestRunOrder(t *testing.T) {
	// Two variants, eight runs: A B B A A B B A A B B A A B B A.
	var seq []int
	for _, run := range RunOrder(2, 8) {
		seq = append(seq, run...)
	}
	if want := []int{0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0}; !slices.Equal(seq, want) {
		t.Errorf("2 variants × 8 runs: %v, want %v", seq, want)
	}
	// Any matrix: forward, then backward; each run a permutation, and over
	// an even number of runs every variant's mean position is the same.
	orders := RunOrder(3, 4)
	if want := [][]int{{0, 1, 2}, {2, 1, 0}, {0, 1, 2}, {2, 1, 0}}; !slices.EqualFunc(orders, want, slices.Equal[[]int]) {
		t.Errorf("3 variants × 4 runs: %v", orders)
	}
	pos := make([]int, 3)
	for _, o := range orders {
		for p, v := range o {
			pos[v] += p
		}
	}
	if pos[0] != pos[1] || pos[1] != pos[2] {
		t.Errorf("summed positions %v: the order favours a variant", pos)
	}
	if got := RunOrder(1, 3); !slices.EqualFunc(got, [][]int{{0}, {0}, {0}}, slices.Equal[[]int]) {
		t.Errorf("1 variant: %v", got)
	}
	if RunOrder(2, 0) == nil || len(RunOrder(2, 0)) != 0 || RunOrder(-1, 2) != nil {
		t.Error("no runs or negative variants")
	}
}

func TestNewRejectsBadOrder(t *testing.T) {
	sc, err := scenarios.Parse("t.yaml", []byte("name: t\ntask: bench.job.process\nload:\n  - spike: {jobs: 10}\nmatrix: {workers.prefetch: [1, 10]}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]int{{0}, {0, 0}, {1, 2}, {0, 1, 1}} {
		if _, err := New(sc, Options{OutDir: t.TempDir(), WorkerArgv: []string{"x"}, Order: order}); err == nil || !strings.Contains(err.Error(), "permutation") {
			t.Errorf("order %v: %v", order, err)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A two-variant run in the reverse order: the variants run B then A, the
// result lists them A, B; each carries its calibration and its workers' CPU.
func TestRunInOrderWithCalibrationAndCPU(t *testing.T) {
	url := brokertest.URL(t)
	task := "bench.job." + brokertest.Name(t, "order")
	sc, err := scenarios.Parse("t.yaml", []byte(`
name: order-test
task: `+task+`
workers: {processes: 1, concurrency: 4}
job: {work: 1ms}
load:
  - steady: {rate: 400/s, for: 1s, size: 256B}
matrix: {workers.prefetch: [1, 20]}
drain_timeout: 30s
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var progress syncBuffer
	r, err := New(sc, Options{AMQPURL: url, OutDir: t.TempDir(), WorkerArgv: []string{exe, "worker"}, Order: []int{1, 0}, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	out := progress.String()
	if first, second := strings.Index(out, "variant 1/2 workers.prefetch=20"), strings.Index(out, "variant 2/2 workers.prefetch=1:"); first < 0 || second < first {
		t.Errorf("run order: prefetch=20 should run first:\n%s", out)
	}
	if len(res.Variants) != 2 || res.Variants[0].Name != "workers.prefetch=1" || res.Variants[1].Name != "workers.prefetch=20" {
		t.Fatalf("result order: %v", names(res))
	}
	for _, v := range res.Variants {
		if c := v.Calibration; c == nil || c.PublishPerS <= 0 || c.ConsumePerS <= 0 || c.Messages != calibrationMessages {
			t.Errorf("%s: calibration %+v, warnings %q", v.Name, c, v.Warnings)
		}
		if v.WorkerCPUSeconds <= 0 {
			t.Errorf("%s: worker CPU %v s for 400 jobs", v.Name, v.WorkerCPUSeconds)
		}
		cpu := v.Series[report.SeriesWorkerCPU]
		if len(cpu) == 0 || !slices.IsSorted(cpu) || cpu[len(cpu)-1] < v.WorkerCPUSeconds*0.5 {
			t.Errorf("%s: worker_cpu_seconds series %v, total %v", v.Name, cpu, v.WorkerCPUSeconds)
		}
		if got, ok := report.Lookup(&v)("cpu_per_1k_jobs"); !ok || got <= 0 {
			t.Errorf("%s: cpu_per_1k_jobs %v %v", v.Name, got, ok)
		}
	}
}

func names(r *report.Result) []string {
	var out []string
	for _, v := range r.Variants {
		out = append(out, v.Name)
	}
	return out
}
