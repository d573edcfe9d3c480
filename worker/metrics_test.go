package worker

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestCollector(t *testing.T) {
	w, err := New(Config{URL: "amqp://localhost/", App: "bench", Prefetch: 1, Breaker: BreakerConfig{Enabled: true}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	w.stats.acked.Add(3)
	w.stats.consumers.Add(1)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(w)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" {
					name += "{" + l.GetValue() + "}"
				}
			}
			got[name] = v
		}
	}
	for name, want := range map[string]float64{
		"bench_worker_jobs_acked_total":        3,
		"bench_worker_consumer_active":         1,
		"bench_worker_jobs_in_flight":          0,
		"bench_worker_breaker_state{disabled}": 1, // Run has not built the breaker yet
		"bench_worker_breaker_state{open}":     0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if len(got) != 19 {
		t.Errorf("gathered %d series, want 19", len(got))
	}
}

// Per-handler metrics: attempts by result, outcomes, and the attempt-duration histogram.
func TestCollectorPerHandler(t *testing.T) {
	w, h := handleFixture(t, Config{URL: "amqp://localhost/", App: "bench", Prefetch: 1, Logger: quietLogger(),
		Retry: RetryPolicy{MaxAttempts: 3, MinDelay: time.Millisecond, Mode: RetryInProcess}},
		func(ctx context.Context, j *Job) error {
			switch j.Attempt {
			case 1:
				return errBoom
			case 2:
				panic("boom")
			}
			return nil
		})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(w)); err != nil { // attempts are timed from here on
		t.Fatal(err)
	}
	ack := &nopAck{}
	d := amqp.Delivery{Acknowledger: ack, MessageId: "m-1"}
	w.handle(nil, h, &d)
	if ack.acks.Load() != 1 {
		t.Fatalf("acks = %d", ack.acks.Load())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	var histCount uint64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "result", "outcome":
					name += "{" + l.GetValue() + "}"
				case "queue":
					if l.GetValue() != h.queue {
						t.Errorf("%s: queue label %q", mf.GetName(), l.GetValue())
					}
				}
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if hg := m.GetHistogram(); hg != nil {
				histCount = hg.GetSampleCount()
			}
		}
	}
	for name, want := range map[string]float64{
		"bench_worker_handler_attempts_total{ok}":        1,
		"bench_worker_handler_attempts_total{error}":     1,
		"bench_worker_handler_attempts_total{panic}":     1,
		"bench_worker_handler_attempts_total{timeout}":   0,
		"bench_worker_handler_jobs_total{acked}":         1,
		"bench_worker_handler_jobs_total{retried}":       2,
		"bench_worker_handler_jobs_total{dead_lettered}": 0,
		"bench_worker_handler_in_flight":                 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if histCount != 3 {
		t.Errorf("attempt histogram count = %d, want 3", histCount)
	}
}
