package maxrate

import (
	"context"
	"errors"
	"math"
	"testing"
)

// model is a simulated worker of known capacity: an M/M/1-like queue whose
// p99 is base/(1-rate/capacity), unbounded at and above capacity, behind a
// generator that falls behind above genMax (0: never).
type model struct {
	capacity, base, slo, genMax float64
	probes                      int
}

func (m *model) probe(_ context.Context, rate float64) (Step, error) {
	m.probes++
	st := Step{P99: math.Inf(1)}
	if rate < m.capacity {
		st.P99 = m.base / (1 - rate/m.capacity)
	}
	st.Met = st.P99 <= m.slo
	st.HarnessBound = m.genMax > 0 && rate > m.genMax
	if math.IsInf(st.P99, 1) {
		st.P99 = 1e6
	}
	return st, nil
}

// The search lands within 10 % of the known capacity (the highest rate that
// meets the SLO: 95 % of the model's), from a range of capacities, within its
// step budget.
func TestSearchFindsKnownCapacity(t *testing.T) {
	for _, capacity := range []float64{150, 730, 1500, 4200, 9999, 18000} {
		// p99 10 ms at no load, SLO 200 ms: met up to 95 % of capacity.
		m := &model{capacity: capacity, base: 10, slo: 200}
		res, err := Search(context.Background(), Config{From: 100, To: 20000}, m.probe)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ceiling != CeilingSLO {
			t.Errorf("capacity %g: ceiling %s (%s), want slo", capacity, res.Ceiling, res.Note)
		}
		known := capacity * (1 - m.base/m.slo)
		if got := res.MaxRate; got < 0.9*known || got > known {
			t.Errorf("capacity %g: max rate %g, want within 10 %% below %g (%s)", capacity, got, known, res.Note)
		}
		if res.Knee <= 0 || res.Knee >= capacity {
			t.Errorf("capacity %g: knee %g, want one below the capacity", capacity, res.Knee)
		}
		if m.probes > 12 || len(res.Steps) != m.probes {
			t.Errorf("capacity %g: %d probes, %d steps recorded", capacity, m.probes, len(res.Steps))
		}
		for _, s := range res.Steps {
			if s.Rate > res.MaxRate && s.Met {
				t.Errorf("capacity %g: step %g met above the max rate %g", capacity, s.Rate, res.MaxRate)
			}
		}
	}
}

// When the generator cannot keep a rate, the search stops there and says
// the ceiling is the harness's.
func TestSearchStopsWhenTheGeneratorFallsBehind(t *testing.T) {
	m := &model{capacity: 10000, base: 10, slo: 200, genMax: 3000}
	res, err := Search(context.Background(), Config{From: 100, To: 20000}, m.probe)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ceiling != CeilingHarness || res.MaxRate != 1600 || res.MissRate != 3200 {
		t.Errorf("got %+v, want the harness's ceiling at 3200/s after 1600/s met", res)
	}
	if last := res.Steps[len(res.Steps)-1]; !last.HarnessBound {
		t.Errorf("the last step is not the harness-bound one: %+v", last)
	}
}

func TestSearchStoppingRules(t *testing.T) {
	ctx := context.Background()
	// The top of the range still meets.
	m := &model{capacity: 1e6, base: 10, slo: 200}
	res, _ := Search(ctx, Config{From: 100, To: 1000}, m.probe)
	if res.Ceiling != CeilingRange || res.MaxRate != 1000 {
		t.Errorf("range: %+v", res)
	}
	// The first rate already misses.
	m = &model{capacity: 50, base: 10, slo: 200}
	res, _ = Search(ctx, Config{From: 100, To: 1000}, m.probe)
	if res.Ceiling != CeilingBelow || res.MaxRate != 0 || len(res.Steps) != 1 {
		t.Errorf("below: %+v", res)
	}
	// The step budget ends the bisection.
	m = &model{capacity: 5000, base: 10, slo: 200}
	res, _ = Search(ctx, Config{From: 100, To: 20000, MaxSteps: 7, Precision: 0.001}, m.probe)
	if res.Ceiling != CeilingSteps || len(res.Steps) != 7 || res.MaxRate < 3200 {
		t.Errorf("steps: %+v", res)
	}
	// A probe's error ends the search with it.
	boom := errors.New("broker gone")
	res, err := Search(ctx, Config{From: 100, To: 1000}, func(context.Context, float64) (Step, error) { return Step{}, boom })
	if !errors.Is(err, boom) || len(res.Steps) != 1 || res.Steps[0].Error != "broker gone" {
		t.Errorf("error: %v %+v", err, res)
	}
	// A cancelled context runs nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if res, err := Search(cctx, Config{From: 100, To: 1000}, m.probe); !errors.Is(err, context.Canceled) || len(res.Steps) != 0 {
		t.Errorf("cancelled: %v %+v", err, res)
	}
	if _, err := Search(ctx, Config{From: 100, To: 50}, m.probe); err == nil {
		t.Error("from above to: no error")
	}
}

func TestKnee(t *testing.T) {
	m := &model{capacity: 1000, base: 10, slo: 1e9}
	var steps []Step
	for r := 100.0; r <= 990; r += 89 {
		st, _ := m.probe(context.Background(), r)
		st.Rate = r
		steps = append(steps, st)
	}
	// p99 = 10/(1-r/1000): flat, then a wall near capacity.
	if k := Knee(steps); k < 700 || k > 950 {
		t.Errorf("knee %g, want where the curve turns up (700–950)", k)
	}
	if k := Knee(steps[:2]); k != 0 {
		t.Errorf("knee of two points %g, want 0", k)
	}
}
