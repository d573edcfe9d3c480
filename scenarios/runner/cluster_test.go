package runner

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// TestClusterScenarios runs the shipped cluster scenarios on one private
// 3-node cluster (booted once for this binary), at a lower rate: every node,
// topology and per-node proxy fault is applied to the real cluster, the
// runtime and the generator recover from each, and no confirmed job is lost.
func TestClusterScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a 3-node rabbitmq-server cluster")
	}
	c := brokertest.Cluster(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, file string) report.Variant {
		t.Helper()
		sc, err := scenarios.Load(file, []string{"load.0.steady.rate=50/s", "workers.processes=2"})
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		r, err := New(sc, Options{OutDir: out, WorkerArgv: []string{exe, "worker"}, Progress: testWriter{t},
			Namespace: NamespaceAuto, Cluster: c, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		res, err := r.Run(ctx)
		t.Cleanup(func() {
			if !t.Failed() {
				return
			}
			logs, _ := filepath.Glob(filepath.Join(out, "*", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("--- %s:\n%s", filepath.Base(l), b[max(0, len(b)-4000):])
			}
		})
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		v := res.Variants[0]
		t.Cleanup(func() {
			if t.Failed() {
				for _, k := range []string{report.SeriesT, report.SeriesQueueConsumers, report.SeriesWorkersConsuming, report.SeriesConfirmed} {
					t.Logf("%s: %v", k, v.Series[k])
				}
			}
		})
		for i, f := range v.Faults {
			if f.Error != "" {
				t.Errorf("fault %d (%s): %s", i+1, f.Kind, f.Error)
			}
			t.Logf("fault %d %s node %d: leader %s consume %s confirm %s recovery %s lost %d unconfirmed %d dup %d redelivered %d deleted %d",
				i+1, f.Kind, f.Node, secs(f.LeaderSeconds), secs(f.ConsumeSeconds), secs(f.ConfirmSeconds), secs(f.RecoverySeconds),
				f.Lost, f.Unconfirmed, f.Duplicates, f.Redelivered, f.DeletedMessages)
		}
		if !v.Passed {
			t.Errorf("gates: %+v\nledger: %+v\nwarnings: %q", v.Gates, v.Ledger, v.Warnings)
		}
		if err := c.WaitHealthy(ctx); err != nil {
			t.Errorf("cluster not whole after the run: %v", err)
		}
		return v
	}

	t.Run("cluster-failover", func(t *testing.T) {
		v := run(t, "../cluster-failover.yaml")
		if len(v.Faults) != 4 {
			t.Fatalf("faults %+v", v.Faults)
		}
		kill, stop := v.Faults[0], v.Faults[1]
		if kill.Kind != fault.ActionKill || kill.Node < 1 || kill.LeaderSeconds == nil {
			t.Errorf("kill the leader: node %d, leader again after %s", kill.Node, secs(kill.LeaderSeconds))
		}
		if stop.Node < 1 || stop.Node == kill.Node && kill.LeaderSeconds != nil && *kill.LeaderSeconds == 0 {
			t.Errorf("stop a follower: node %d", stop.Node)
		}
		if v.Faults[3].Node != 3 || v.Series[report.SeriesQueueLeader] == nil {
			t.Errorf("down on node 3: node %d; leader series %v", v.Faults[3].Node, v.Series[report.SeriesQueueLeader] != nil)
		}
		if v.Ledger.Lost != 0 || v.Ledger.Confirmed == 0 {
			t.Errorf("ledger %+v", v.Ledger)
		}
	})
	t.Run("topology-faults", func(t *testing.T) {
		v := run(t, "../topology-faults.yaml")
		if len(v.Faults) != 4 {
			t.Fatalf("faults %+v", v.Faults)
		}
		if v.Faults[3].Node != 2 {
			t.Errorf("disk alarm on node %d, want 2", v.Faults[3].Node)
		}
		if v.Ledger.Retries == 0 {
			t.Errorf("no retries: the retry tiers were not in use")
		}
	})
}

func secs(x *float64) string {
	if x == nil {
		return "null"
	}
	return time.Duration(*x * float64(time.Second)).Round(10 * time.Millisecond).String()
}
