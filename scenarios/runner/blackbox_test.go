package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// blackboxWorker is a worker bench cannot see into, written against
// amqp091 alone as a service in another language would be: it declares its
// own topology (QUEUE, its dead queue DEAD, the fanout exchanges EVENT and
// FAILED), takes JSON jobs {"tid": ..., "order": N}, and publishes
// {"tid": ...} to EVENT when one is done, then acks. On purpose it drops
// the completion of order DROP, publishes the completion of order REPEAT
// twice, and fails order FAIL for good (FAILED, then dead-lettered).
func blackboxWorker() int {
	env := func(k string) string { return os.Getenv(k) }
	order := func(k string) int64 { n, _ := strconv.ParseInt(env(k), 10, 64); return n }
	drop, repeat, fail := order("DROP"), order("REPEAT"), order("FAIL")
	conn, err := amqp.Dial(env("AMQP_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 3
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err == nil {
		err = errors.Join(
			ch.ExchangeDeclare(env("EVENT"), amqp.ExchangeFanout, true, false, false, false, nil),
			ch.ExchangeDeclare(env("FAILED"), amqp.ExchangeFanout, true, false, false, false, nil))
	}
	if err == nil {
		_, err = ch.QueueDeclare(env("DEAD"), true, false, false, false, nil)
	}
	if err == nil {
		_, err = ch.QueueDeclare(env("QUEUE"), true, false, false, false,
			amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": env("DEAD")})
	}
	if err == nil {
		err = ch.Qos(10, 0, false)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "declare:", err)
		return 3
	}
	deliveries, err := ch.Consume(env("QUEUE"), "", false, false, false, false, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consume:", err)
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("blackbox worker consuming", env("QUEUE"))
	publish := func(exchange, tid string) error {
		body, _ := json.Marshal(map[string]string{"tid": tid})
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, "", false, false, amqp.Publishing{Body: body})
		if err != nil {
			return err
		}
		if !c.Wait() {
			return errors.New("nacked")
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return 0
		case d, ok := <-deliveries:
			if !ok {
				return 0
			}
			var job struct {
				TID   string `json:"tid"`
				Order int64  `json:"order"`
			}
			if err := json.Unmarshal(d.Body, &job); err != nil {
				_ = d.Nack(false, false)
				continue
			}
			var err error
			switch job.Order {
			case drop:
			case fail:
				if err = publish(env("FAILED"), job.TID); err == nil {
					_ = d.Nack(false, false)
					continue
				}
			case repeat:
				err = errors.Join(publish(env("EVENT"), job.TID), publish(env("EVENT"), job.TID))
			default:
				err = publish(env("EVENT"), job.TID)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "publish:", err)
				return 3
			}
			_ = d.Ack(false)
		}
	}
}

// blackboxTopology names the black-box worker's queues and exchanges, and
// deletes them when the test ends: bench never does, they are the worker's.
type blackboxTopology struct{ queue, dead, event, failed string }

func newBlackboxTopology(t *testing.T, url string) blackboxTopology {
	name := brokertest.Name(t, "bb")
	top := blackboxTopology{queue: "bbtest.job." + name, dead: "bbtest.job." + name + ".dead", event: name + ".done", failed: name + ".failed"}
	t.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			t.Errorf("clean up: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("clean up: %v", err)
			return
		}
		for _, q := range []string{top.queue, top.dead} {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
		for _, x := range []string{top.event, top.failed} {
			_ = ch.ExchangeDelete(x, false, false)
		}
	})
	return top
}

// runOwn runs a one-variant scenario of an own worker; it returns the
// variant, the error, and the output directory.
func runOwn(t *testing.T, yaml string) (report.Variant, error, string) {
	t.Helper()
	sc, err := scenarios.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := New(sc, Options{AMQPURL: brokertest.URL(t), OutDir: dir, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := r.Run(ctx)
	if len(res.Variants) != 1 {
		t.Fatalf("%d variants: %v", len(res.Variants), err)
	}
	return res.Variants[0], err, dir
}

// The black-box ledger, against a worker that misbehaves on purpose: a
// dropped completion is a lost job, a repeated one a duplicate, a failure
// announced and dead-lettered one recovery; retries and redeliveries are
// not observable (null, never 0).
func TestBlackBoxLedgerCountsWhatTheWorkerDid(t *testing.T) {
	url := brokertest.URL(t)
	top := newBlackboxTopology(t, url)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const jobs = 300
	v, err, _ := runOwn(t, fmt.Sprintf(`
name: blackbox-test
task: %[1]s
workers:
  command: [%[2]s, blackbox]
  processes: 2
  env: {QUEUE: %[1]s, DEAD: %[3]s, EVENT: %[4]s, FAILED: %[5]s, DROP: "7", REPEAT: "9", FAIL: "11"}
job:
  body: {template: '{"order": {{.Seq}}}'}
  tid: {json: tid}
completion:
  event: %[4]s
  failed_event: %[5]s
  tid: {json: tid}
  dead_queue: %[3]s
load:
  - spike: {jobs: %[6]d}
drain_timeout: 5s
gates: [lost == 0, retries == 0]
`, top.queue, exe, top.dead, top.event, top.failed, jobs))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	l := v.Ledger
	if l.Published != jobs || l.Confirmed != jobs {
		t.Fatalf("published %d confirmed %d", l.Published, l.Confirmed)
	}
	if l.Lost != 1 || l.Duplicates != 1 || l.Recovered != 1 || l.DeadLettered != 1 || l.Succeeded != jobs-2 {
		t.Errorf("ledger %+v; want lost 1 (the dropped completion), duplicates 1 (the repeated one), recovered and dead-lettered 1, %d distinct successes", l, jobs-2)
	}
	if !strings.Contains(strings.Join(v.Warnings, "\n"), "lost jobs (first sequence numbers): [7]") {
		t.Errorf("warnings %q do not name job 7", v.Warnings)
	}
	if l.Observed("retries") || l.Observed("redelivered") {
		t.Errorf("retries and redeliveries of a black box counted: %v", l.Unobserved)
	}
	js, _ := json.Marshal(l)
	if !strings.Contains(string(js), `"retries":null`) || !strings.Contains(string(js), `"redelivered":null`) {
		t.Errorf("result.json ledger %s", js)
	}
	if e := v.LatencyMS.EndToEnd; e.Count != jobs-1 || v.LatencyMS.Processing.Count != 0 {
		t.Errorf("end-to-end latency of %d jobs, processing of %d; want %d first outcomes by event, no processing time", e.Count, v.LatencyMS.Processing.Count, jobs-1)
	}
	if v.Worker == nil || v.Worker.Mode != report.ModeBlackBox || v.Worker.Command[1] != "blackbox" {
		t.Errorf("worker %+v", v.Worker)
	}
	if len(v.Gates) != 2 || v.Gates[0].Passed || v.Gates[1].Passed || !strings.Contains(v.Gates[1].Error, "not measured") {
		t.Errorf("gates %+v; want lost == 0 failed and retries == 0 not judged", v.Gates)
	}
	if v.Series[report.SeriesWorkerRSS] == nil || v.Peak.WorkerRSSBytes == 0 {
		t.Errorf("no RSS sampled from the worker processes: peak %d", v.Peak.WorkerRSSBytes)
	}
	// The worker's topology is its own: the run deleted none of it.
	for _, q := range []string{top.queue, top.dead} {
		if exists, _, _ := queueState(t, url, q); !exists {
			t.Errorf("the run deleted the worker's queue %s", q)
		}
	}
}

// queueState inspects a queue without creating it.
func queueState(t *testing.T, url, name string) (exists bool, messages, consumers int) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		return false, 0, 0
	}
	return true, q.Messages, q.Consumers
}

// On an external broker an own worker's queue that holds messages stops the
// run before anything starts, and is left as it was: bench never purges it.
func TestOwnWorkerQueueInUseIsRefused(t *testing.T) {
	url := brokertest.URL(t)
	top := newBlackboxTopology(t, url)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(top.queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(t.Context(), "", top.queue, false, false, amqp.Publishing{Body: []byte("someone's")}); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	v, err, _ := runOwn(t, fmt.Sprintf(`
name: in-use-test
task: %[1]s
workers:
  command: [%[2]s, blackbox]
completion: {event: %[3]s}
load:
  - spike: {jobs: 10}
`, top.queue, exe, top.event))
	var fe *ForeignError
	if !errors.As(err, &fe) || !fe.OwnWorker || !strings.Contains(err.Error(), "rabbitmqctl purge_queue") || strings.Contains(err.Error(), "--reset-queues") {
		t.Fatalf("err = %v, want the own worker's refusal", err)
	}
	if exists, msgs, _ := queueState(t, url, top.queue); !exists || msgs != 1 || v.Ledger.Published != 0 {
		t.Errorf("queue exists %v with %d messages; published %d", exists, msgs, v.Ledger.Published)
	}
}

// A command that sends no telemetry, in a scenario without a completion
// block, is an environment error naming both ways out, not a run that
// reports every job lost.
func TestOwnWorkerWithoutTelemetryOrCompletion(t *testing.T) {
	url := brokertest.URL(t)
	top := newBlackboxTopology(t, url)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	v, err, _ := runOwn(t, fmt.Sprintf(`
name: silent-test
task: %[1]s
workers:
  command: [%[2]s, blackbox]
  env: {QUEUE: %[1]s, DEAD: %[3]s, EVENT: %[4]s, FAILED: %[5]s}
load:
  - spike: {jobs: 10}
`, top.queue, exe, top.dead, top.event, top.failed))
	if !errors.Is(err, ErrEnvironment) || !errors.Is(err, ErrNoTelemetry) {
		t.Fatalf("err = %v, want ErrNoTelemetry", err)
	}
	for _, want := range []string{"github.com/benchmq/bench/worker", "BENCH_TELEMETRY", "completion"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if v.Ledger.Published != 0 {
		t.Errorf("published %d jobs to a worker bench cannot see", v.Ledger.Published)
	}
}
