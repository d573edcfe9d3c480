// Package examples holds real services that bench measures (see each
// example's scenario in scenarios/examples); these tests run them as
// `make test` does, at the scenarios' own small load.
package examples_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/benchmq/bench/examples/orders/payments"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/scenarios/runner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs a shipped example scenario with sets, on the broker it asks for.
func run(t *testing.T, file string, sets ...string) *report.Result {
	t.Helper()
	sc, err := scenarios.Load(filepath.Join("..", "scenarios", "examples", file), sets)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(sc, runner.Options{OutDir: t.TempDir(), Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("run %s: %v", file, err)
	}
	return res
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The Node.js worker, black-box, through a worker kill: every job is
// accounted for by its TID, none lost; what bench cannot see is n/a.
func TestNodeWorkerExample(t *testing.T) {
	t.Parallel() // each example runs on a managed node of its own
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: make deps installs it (BENCH_SKIP_NODE=1 leaves it out)")
	}
	if _, err := os.Stat(filepath.Join("node-worker", "node_modules", "amqplib")); err != nil {
		t.Skip("examples/node-worker has no node_modules: make deps runs npm ci")
	}
	res := run(t, "node-worker.yaml")
	v := res.Variants[0]
	if !res.Passed {
		t.Errorf("gates: %+v; warnings %q", v.Gates, v.Warnings)
	}
	l := v.Ledger
	if l.Confirmed == 0 || l.Lost != 0 || l.Recovered == 0 || l.Recovered != l.DeadLettered {
		t.Errorf("ledger %+v: want every confirmed job succeeded or recovered (the poisoned ones, dead-lettered), none lost", l)
	}
	if l.Observed("retries") || l.Observed("redelivered") || v.Worker == nil || v.Worker.Mode != report.ModeBlackBox {
		t.Errorf("a black box's retries and redeliveries counted: %v; worker %+v", l.Unobserved, v.Worker)
	}
	if len(v.Faults) != 1 || v.Faults[0].Kind != "kill" || v.Faults[0].Error != "" {
		t.Errorf("faults %+v", v.Faults)
	}
	if v.Peak.WorkerRSSBytes < 10<<20 {
		t.Errorf("peak RSS %d: the node processes were not sampled", v.Peak.WorkerRSSBytes)
	}
}

// The orders service on the runtime, white-box, while payments is slow: the
// runtime reports every job itself, so the ledger is exact (retries and
// redeliveries counted); the breaker opens; the scenario's timeout is in
// force in every process, as each reported.
func TestOrdersExample(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "orders-worker")
	build := exec.Command("go", "build", "-o", bin, "./orders/cmd/orders-worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the orders worker: %v\n%s", err, out)
	}
	pay := httptest.NewServer(payments.Handler(5 * time.Millisecond))
	defer pay.Close()
	res := run(t, "orders.yaml", "workers.command=["+bin+"]", "dependencies.0.upstream="+pay.Listener.Addr().String())
	v := res.Variants[0]
	if !res.Passed {
		t.Errorf("gates: %+v; warnings %q", v.Gates, v.Warnings)
	}
	l := v.Ledger
	if l.Lost != 0 || l.Succeeded+l.Recovered != l.Confirmed || !l.Observed("retries") || l.Retries == 0 {
		t.Errorf("ledger %+v: want every job's outcome, and the retries the slow payments caused", l)
	}
	if v.Breaker.Opened == 0 || v.LatencyMS.Processing.Count == 0 {
		t.Errorf("breaker %+v, processing latency of %d jobs", v.Breaker, v.LatencyMS.Processing.Count)
	}
	if len(v.Faults) != 1 || v.Faults[0].Error != "" || !strings.Contains(v.Faults[0].Detail, "name=payments") {
		t.Errorf("faults %+v", v.Faults)
	}
	if v.Worker == nil || v.Worker.Mode != report.ModeWhiteBox || len(v.Worker.Processes) < 2 {
		t.Fatalf("worker %+v", v.Worker)
	}
	for _, p := range v.Worker.Processes {
		var s struct {
			Timeout      string   `json:"timeout"`
			Prefetch     int      `json:"prefetch"`
			FromScenario []string `json:"from_scenario"`
		}
		if err := json.Unmarshal(p.Settings, &s); err != nil || s.Timeout != "500ms" || s.Prefetch != 10 || len(s.FromScenario) != 1 {
			t.Errorf("process %d settings %s (%v): want the scenario's timeout, the service's prefetch", p.Index, p.Settings, err)
		}
	}
}
