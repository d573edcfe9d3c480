package runner

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/internal/simworker"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// The runner spawns this test binary as its worker processes.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_WORKER_INDEX") != "" && len(os.Args) > 1 && os.Args[1] == "blackbox" {
		os.Exit(blackboxWorker())
	}
	if os.Getenv("BENCH_WORKER") == "1" && len(os.Args) > 1 {
		switch os.Args[1] {
		case "worker":
			os.Exit(testWorker(os.Args[2:]))
		case "agent":
			os.Exit(testAgent(os.Args[2:]))
		case "idle":
			idleWorker()
		}
	}
	goleak.VerifyTestMain(brokertest.Main(m))
}

// testWorker is what `bench worker` does with the flags the runner passes.
func testWorker(args []string) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	config := fs.String("config", "", "")
	id := fs.Int("worker", 0, "")
	tel := fs.String("telemetry", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := simworker.ReadConfig(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.URL, cfg.Worker, cfg.Telemetry = os.Getenv("AMQP_URL"), *id, *tel
	cfg.URLs = simworker.SplitURLs(os.Getenv(EnvURLs))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := simworker.Run(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	return 0
}

func runScenario(t *testing.T, yaml string) report.Variant {
	t.Helper()
	return runScenarioWith(t, yaml, Options{})
}

// runScenarioWith runs yaml with opts (its broker, output, worker and
// progress filled in) and returns its one variant.
func runScenarioWith(t *testing.T, yaml string, opts Options) report.Variant {
	t.Helper()
	url := brokertest.URL(t)
	sc, err := scenarios.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	opts.AMQPURL, opts.OutDir, opts.WorkerArgv, opts.Progress = url, t.TempDir(), []string{exe, "worker"}, testWriter{t}
	r, err := New(sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(res.Variants) != 1 {
		t.Fatalf("%d variants", len(res.Variants))
	}
	return res.Variants[0]
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// A SIGKILLed worker's prefetched and in-flight jobs are redelivered to the
// others: nothing is lost, and the ledger counts the redeliveries.
func TestWorkerKilledMidRunLosesNothing(t *testing.T) {
	task := "bench.job." + brokertest.Name(t, "kill")
	v := runScenario(t, `
name: kill-test
app: bench
task: `+task+`
workers: {processes: 2, concurrency: 4, prefetch: 50, timeout: 2s}
job: {work: 4ms}
load:
  - spike: {jobs: 3000, size: 512B}
faults:
  - {at: 300ms, target: worker, action: kill}
drain_timeout: 60s
gates: [lost == 0]
`)
	l := v.Ledger
	if l.Published != 3000 || l.Confirmed != 3000 {
		t.Fatalf("published %d confirmed %d", l.Published, l.Confirmed)
	}
	if l.Lost != 0 {
		t.Fatalf("lost %d jobs: %v", l.Lost, v.Warnings)
	}
	if l.Redelivered == 0 {
		t.Fatalf("no redelivery counted after a SIGKILL with prefetch 50: %+v", l)
	}
	if l.Succeeded != 3000 {
		t.Fatalf("succeeded %d duplicates %d, want 3000 distinct", l.Succeeded, l.Duplicates)
	}
	if v.BrokerStats != report.BrokerStatsDerived { // the machine's broker runs without the management plugin
		t.Errorf("broker_stats %q, want %q", v.BrokerStats, report.BrokerStatsDerived)
	}
	if len(v.Faults) != 1 || v.Faults[0].Kind != "kill" || v.Faults[0].Error != "" {
		t.Fatalf("faults = %+v", v.Faults)
	}
	if !v.Passed {
		t.Fatalf("gates: %+v", v.Gates)
	}
}

// On a managed node the broker's own figures come from its management API:
// the jobs a worker holds unacked (at most its prefetch) and the node's memory.
func TestManagedNodeReportsBrokerFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a rabbitmq-server node")
	}
	sc, err := scenarios.Parse("test.yaml", []byte(`
name: mgmt-test
broker: {managed: true}
app: bench
task: bench.job.mgmt
workers: {processes: 1, concurrency: 4, prefetch: 40}
job: {work: 10ms}
load:
  - spike: {jobs: 3000, size: 512B}
drain_timeout: 60s
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(sc, Options{OutDir: t.TempDir(), WorkerArgv: []string{exe, "worker"}, Progress: testWriter{t}})
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
	if v.BrokerStats != report.BrokerStatsManagement {
		t.Fatalf("broker_stats %q, want %q; warnings %v", v.BrokerStats, report.BrokerStatsManagement, v.Warnings)
	}
	if u := v.Peak.QueueUnacked; u < 1 || u > 40 {
		t.Errorf("peak(queue_unacked) %d, want the worker's prefetch at most, and some", u)
	}
	mem := v.Series[report.SeriesBrokerMemory]
	if len(mem) == 0 || slices.Max(mem) < 10<<20 {
		t.Errorf("broker_memory_bytes %v, want the node's tens of MiB", mem)
	}
}

// An abort gate ends a hopeless variant early: the load stops, the drain is
// skipped, and the result says which gate, with what value, and when.
func TestAbortGateEndsTheVariant(t *testing.T) {
	task := "bench.job." + brokertest.Name(t, "abort")
	// One handler at 50 ms a job finishes 20 jobs/s of the 200/s offered:
	// end-to-end latency passes 300 ms within a few seconds of a 60 s load.
	v := runScenario(t, `
name: abort-test
app: bench
task: `+task+`
workers: {processes: 1, concurrency: 1, prefetch: 5}
job: {work: 50ms}
load:
  - steady: {rate: 200/s, for: 60s}
drain_timeout: 60s
gates:
  - lost == 0
  - {expr: "max(end_to_end) < 300ms", abort: true}
`)
	a := v.Aborted
	if a == nil {
		t.Fatalf("not aborted; ledger %+v, warnings %q", v.Ledger, v.Warnings)
	}
	if a.Gate != "max(end_to_end) < 300ms" || a.Value < 0.3 || a.AtS <= 0 || a.AtS > 30 || !strings.Contains(a.Reason, "the load was stopped") {
		t.Errorf("abort %+v", a)
	}
	if v.Passed || v.Ledger.Published >= 12000 || v.LoadSeconds > 30 {
		t.Errorf("passed %v, published %d in %.1fs: the load was not stopped", v.Passed, v.Ledger.Published, v.LoadSeconds)
	}
	if len(v.Gates) != 2 || !v.Gates[0].Skipped || v.Gates[1].Passed || !v.Gates[1].Abort {
		t.Errorf("gates %+v", v.Gates)
	}
}
