package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/telemetry"
)

// benchRunner is the runner's end of the telemetry: what one process reported.
type benchRunner struct {
	mu          sync.Mutex
	hello       telemetry.Hello
	ready       bool
	outcomes    []telemetry.Outcome
	redelivered []int64
	stats       int
	changed     chan struct{}
}

func (r *benchRunner) accept(h telemetry.Hello) telemetry.Conn {
	r.mu.Lock()
	r.hello = h
	r.mu.Unlock()
	return r
}

func (r *benchRunner) note(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *benchRunner) Ready() { r.note(func() { r.ready = true }) }
func (r *benchRunner) Outcome(o telemetry.Outcome) {
	r.note(func() { r.outcomes = append(r.outcomes, o) })
}
func (r *benchRunner) Redelivered(seq int64) {
	r.note(func() { r.redelivered = append(r.redelivered, seq) })
}
func (r *benchRunner) Stats(telemetry.Stats) { r.note(func() { r.stats++ }) }
func (r *benchRunner) Bye()                  {}

// Under bench a service on the runtime reports with no code change: the
// scenario's settings override its Config and handler options (and the log
// says so), its hello carries the settings in force, and every job bench
// published gets its final outcome reported before the ack; a reported job
// whose ack is lost is redelivered, reported as such, and reported again.
func TestUnderBenchTheRuntimeReportsItself(t *testing.T) {
	r := &benchRunner{changed: make(chan struct{}, 1)}
	srv, err := telemetry.Listen("127.0.0.1:0", r.accept, func(err error) { t.Errorf("telemetry: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the worker stops (cleanups run last in, first out): it
	// waits for the worker's connection to end.
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	t.Setenv(telemetry.EnvTelemetry, srv.Addr())
	t.Setenv(telemetry.EnvWorkerIndex, "3")
	t.Setenv(telemetry.EnvSettings, `{"prefetch": 7, "concurrency": 2, "retry": {"max_attempts": 2, "min_delay": 1000000}}`)

	app := uniq(t)
	task := app + ".job.process"
	a := newAdmin(t)
	a.deleteLater(queuesOf(TaskQueue(task), RetryPolicy{MaxAttempts: 2, MinDelay: time.Millisecond, MaxDelay: 100 * time.Millisecond}))
	logs := &syncWriter{}
	cfg := baseConfig(t, app)
	cfg.Prefetch, cfg.Concurrency, cfg.Retry.MaxAttempts = 50, 1, 5
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ks := &killSwitch{}
	cfg.Dial = ks.dial
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var killed atomic.Bool
	handler := func(ctx context.Context, j *Job) error {
		switch string(j.Body) {
		case "fail":
			return errBoom
		case "lose-ack":
			if killed.CompareAndSwap(false, true) {
				ks.kill() // the ack after this attempt fails: the broker redelivers
			}
		}
		return nil
	}
	if err := w.HandleTask(task, handler, WithConcurrency(9), WithRecovery(func(context.Context, *Job, error) error { return nil })); err != nil {
		t.Fatal(err)
	}
	start(t, w)

	ctx := testCtx(t, 30*time.Second)
	publish := func(body string, seq int64) {
		h := amqp.Table{}
		if seq >= 0 {
			h[telemetry.HeaderSeq], h[telemetry.HeaderIntended] = seq, time.Now().UnixNano()
		}
		if err := a.channel().PublishWithContext(ctx, "", TaskQueue(task), false, false, amqp.Publishing{Headers: h, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for seq := range int64(10) {
		publish("ok", seq)
	}
	publish("fail", 10)
	publish("not bench's", -1)
	// Acks wait for their record's write (telemetry.OutcomeLinger): the
	// lost connection would take the pending acks of jobs finished with it
	// along, so job 11 comes once the others are acked.
	// Done: 10 successes and the job bench did not publish acked, the
	// failing one dead-lettered, nothing in hand.
	for st := w.Stats(); st.Acked < 11 || st.DeadLettered < 1 || st.InFlight > 0; st = w.Stats() {
		select {
		case <-r.changed:
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("stats %+v: want 11 acked, 1 dead-lettered", st)
		}
	}
	publish("lose-ack", 11)

	// 10 successes, 1 recovery, and job 11 twice (its ack was lost).
	for {
		r.mu.Lock()
		n := len(r.outcomes)
		r.mu.Unlock()
		if n >= 13 {
			break
		}
		recv(t, ctx, r.changed)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	bySeq := map[int64][]telemetry.Outcome{}
	for _, o := range r.outcomes {
		bySeq[o.Seq] = append(bySeq[o.Seq], o)
	}
	for seq := range int64(10) {
		if os := bySeq[seq]; len(os) != 1 || os[0].Kind != telemetry.Succeeded || os[0].Attempt != 1 || os[0].Intended == 0 || os[0].Done < os[0].Intended {
			t.Errorf("job %d: outcomes %+v", seq, os)
		}
	}
	if os := bySeq[10]; len(os) != 1 || os[0].Kind != telemetry.Recovered || os[0].Attempt != 2 {
		t.Errorf("failing job: outcomes %+v; want recovered at attempt 2 (the scenario's max_attempts)", os)
	}
	if os := bySeq[11]; len(os) != 2 || !slices.Contains(r.redelivered, 11) {
		t.Errorf("job whose ack was lost: outcomes %+v, redeliveries %v; want two outcomes and its redelivery", os, r.redelivered)
	}
	if len(r.outcomes) != 13 {
		t.Errorf("%d outcomes; the job bench did not publish was reported", len(r.outcomes))
	}
	if !r.ready || r.hello.Worker != 3 || r.hello.PID == 0 {
		t.Errorf("ready %v, hello %+v", r.ready, r.hello)
	}
	var got settings
	if err := json.Unmarshal(r.hello.Settings, &got); err != nil {
		t.Fatalf("settings %s: %v", r.hello.Settings, err)
	}
	if got.Prefetch != 7 || got.Concurrency != 2 || got.Retry.MaxAttempts != 2 || got.Retry.MinDelay != "1ms" || got.Retry.MaxDelay != "100ms" ||
		len(got.Handlers) != 1 || got.Handlers[0].Concurrency != 2 || got.Handlers[0].Retry.MaxAttempts != 2 ||
		!slices.Equal(got.FromScenario, []string{"prefetch", "concurrency", "retry.max_attempts", "retry.min_delay"}) {
		t.Errorf("settings in force %s", r.hello.Settings)
	}
	for _, want := range []string{"running under bench", "prefetch=\"7 (the service's: 50)\"", "retry.max_attempts=2"} {
		if l := logs.String(); !strings.Contains(l, want) {
			t.Errorf("log lacks %s:\n%s", want, l)
		}
	}
}

// A bad $BENCH_WORKER_SETTINGS is the service's configuration error.
func TestUnderBenchBadSettings(t *testing.T) {
	t.Setenv(telemetry.EnvTelemetry, "127.0.0.1:1")
	for _, bad := range []struct{ env, val string }{
		{telemetry.EnvSettings, `{"prefetch": "lots"}`},
		{telemetry.EnvSettings, `{"retry": {"max_attempts": "x"}}`},
		{telemetry.EnvWorkerIndex, "-" + strconv.Itoa(1)},
	} {
		t.Run(bad.val, func(t *testing.T) {
			t.Setenv(bad.env, bad.val)
			_, err := New(baseConfig(t, "app"))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("New = %v, want a *ConfigError", err)
			}
		})
	}
}

// syncWriter serialises writes from the worker's goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
