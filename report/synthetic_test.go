package report

import (
	"math"
	"math/rand/v2"
	"testing"
)

// syntheticResult is a realistic two-variant result with histograms, series
// and faults, generated deterministically.
func syntheticResult(t testing.TB) *Result {
	t.Helper()
	rng := rand.New(rand.NewPCG(42, 7))
	r := &Result{
		SchemaVersion: SchemaVersion,
		Passed:        false,
		Scenario:      Scenario{Name: "spike", File: "scenarios/spike.yaml", SHA256: "ab12", Seed: 42, Description: "10,000-job spike; does prefetch keep worker memory bounded?"},
		Env:           Env{BrokerVersion: "3.10.8", GoVersion: "go1.26", GitSHA: "deadbeef", Hostname: "ci-1", CPUs: 2, BrokerKind: "external", OS: "linux/amd64"},
		StartedAt:     "2026-11-26T10:00:00Z",
		FinishedAt:    "2026-11-26T10:01:30Z",
	}
	for i, prefetch := range []int{10, 100} {
		v := Variant{
			Name:         []string{"prefetch=10", "prefetch=100"}[i],
			Params:       map[string]any{"workers.prefetch": prefetch},
			Passed:       i == 0,
			Ledger:       Ledger{Published: 10000, Confirmed: 10000, Succeeded: 9800, Recovered: 150, DeadLettered: 50, Retries: 420, Redelivered: 12, Duplicates: int64(i)},
			Throughput:   Throughput{PublishPerS: 900, CompletePerS: 850 - 100*float64(i)},
			DrainSeconds: 4.5 + float64(i),
			Peak:         Peak{WorkerRSSBytes: int64(40+60*i) << 20, WorkerHeapBytes: int64(20+40*i) << 20, QueueReady: 9000, QueueUnacked: int64(20 + 180*i), WorkerInflight: 16},
			Breaker:      Breaker{Opened: 1, OpenSeconds: 5},
			Faults: []Fault{
				{AtS: 20, UntilS: 30, Target: "dependency", Kind: "latency", Detail: "latency=1s", RecoverySeconds: ptr(3.2), DetectSeconds: ptr(0.4), BacklogPeak: 4000},
				{AtS: 40, UntilS: 40, Target: "worker", Kind: "kill", RecoveryNote: "the completion rate was not back to 90% of its rate before the fault by the end of the run", DetectNote: "no failed attempt or breaker opening was seen"},
			},
			Gates: []Gate{
				{Expr: "lost == 0", Passed: true, Value: 0},
				{Expr: "p99(end_to_end) < 2s", Passed: i == 0, Value: 1500 + 1000*float64(i)},
			},
			Series:     map[string][]float64{},
			Histograms: map[string]string{},
		}
		scale := 1 + float64(i)
		medians := map[string]float64{KindEndToEnd: 40000, KindPublishConfirm: 2000, KindProcessing: 5000}
		for _, kind := range Kinds() {
			median := medians[kind]
			h := NewHistogram()
			for range 5000 {
				us := median * scale * math.Exp(rng.NormFloat64()*0.8)
				if err := h.RecordValue(int64(us)); err != nil {
					t.Fatalf("record: %v", err)
				}
			}
			enc, err := EncodeHistogram(h)
			if err != nil {
				t.Fatal(err)
			}
			v.Histograms[kind] = enc
			s := Summarize(h)
			switch kind {
			case KindEndToEnd:
				v.LatencyMS.EndToEnd = s
			case KindPublishConfirm:
				v.LatencyMS.PublishConfirm = s
			case KindProcessing:
				v.LatencyMS.Processing = s
			}
		}
		for sec := range 60 {
			x := float64(sec)
			inFault := x >= 20 && x < 30
			add := func(k string, val float64) { v.Series[k] = append(v.Series[k], val) }
			add("t_s", x)
			add("intended_rate", 900)
			add("publish_rate", 880+20*rng.Float64())
			c := 850 + 30*rng.Float64()
			if inFault {
				c = 200
			}
			add("complete_rate", c)
			add("p50_ms", 40*scale+rng.Float64()*5)
			add("p99_ms", 150*scale+rng.Float64()*30)
			add("queue_ready", math.Max(0, 9000-150*x))
			add("queue_unacked", 20+180*float64(i))
			add("queue_retry", 5)
			add("queue_dead", float64(sec/10))
			add("worker_rss_bytes", float64((40+60*i)<<20)*(0.8+0.2*x/60))
			add("worker_heap_bytes", float64((20+40*i)<<20)*(0.8+0.2*x/60))
			add("worker_inflight", 16)
			b := 0.0
			if x >= 22 && x < 27 {
				b = 1
			}
			add("breaker_open", b)
		}
		v.LoadSeconds = 60
		r.Variants = append(r.Variants, v)
	}
	return r
}

func ptr(v float64) *float64 { return &v }
