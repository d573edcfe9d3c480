package simworker

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/worker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func harnessJob(seq int64, attempt int, redelivered bool) *worker.Job {
	return &worker.Job{ID: "j", Name: "bench.job.process", Attempt: attempt, Redelivered: redelivered,
		Headers: amqp.Table{loadgen.HeaderSeq: seq, loadgen.HeaderIntended: int64(1234)}}
}

func TestSimulatedJobOutcomes(t *testing.T) {
	ctx := context.Background()
	var emitted []int64
	pub := func(_ context.Context, event string, body []byte) error {
		if event != "job.processed" {
			t.Errorf("emitted %q", event)
		}
		emitted = append(emitted, int64(binary.LittleEndian.Uint64(body)))
		return nil
	}

	t.Run("success works and emits", func(t *testing.T) {
		j := newJob(Config{Job: scenarios.Job{Hold: 64 << 10, Emit: "job.processed", Work: scenarios.Dist{Kind: "fixed", Fixed: time.Millisecond}}}, pub)
		start := time.Now()
		if err := j.handle(ctx, harnessJob(7, 2, true)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < time.Millisecond {
			t.Fatalf("handled in %v, want the 1ms of work", d)
		}
		if len(emitted) != 1 || emitted[0] != 7 {
			t.Fatalf("emitted %v", emitted)
		}
	})

	t.Run("failure is retriable", func(t *testing.T) {
		j := newJob(Config{Job: scenarios.Job{FailRate: 1}}, pub)
		err := j.handle(ctx, harnessJob(1, 1, false))
		if !errors.Is(err, errSimulated) || worker.IsPermanent(err) {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("fatal is permanent", func(t *testing.T) {
		j := newJob(Config{Job: scenarios.Job{FatalRate: 1}}, pub)
		if err := j.handle(ctx, harnessJob(1, 1, false)); !worker.IsPermanent(err) {
			t.Fatalf("err %v is not permanent", err)
		}
	})

	t.Run("a job without a sequence number is permanent", func(t *testing.T) {
		j := newJob(Config{}, pub)
		err := j.handle(ctx, &worker.Job{ID: "x", Headers: amqp.Table{}})
		if !worker.IsPermanent(err) || !strings.Contains(err.Error(), loadgen.HeaderSeq) {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("work respects the attempt's deadline", func(t *testing.T) {
		j := newJob(Config{Job: scenarios.Job{Work: scenarios.Dist{Kind: "fixed", Fixed: time.Hour}}}, pub)
		c, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		if err := j.handle(c, harnessJob(1, 1, false)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})

}

func TestConfigValidateReportsEverything(t *testing.T) {
	c := Config{Task: "a.b.c", Event: "b.c", Job: scenarios.Job{DependencyCalls: 1, FailRate: 2, Hold: -1}}
	err := c.Validate()
	for _, want := range []string{"no broker URL", "exactly one of task and event", "dependency_url", "fail_rate", "hold"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}
