package worker

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
