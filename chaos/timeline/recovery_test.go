package timeline

import (
	"github.com/benchmq/bench/chaos/fault"

	"errors"
	"testing"
	"time"
)

// series samples once a second from 0 to 30 s; rate(t) and ready(t) give the
// values.
func series(rate, ready func(t float64) float64) Series {
	var s Series
	for t := 0.0; t <= 30; t++ {
		s.T = append(s.T, t)
		s.CompleteRate = append(s.CompleteRate, rate(t))
		s.QueueReady = append(s.QueueReady, ready(t))
	}
	return s
}

var load = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func applied(at, until float64) Applied {
	sec := func(f float64) time.Time { return load.Add(time.Duration(f * float64(time.Second))) }
	return Applied{Spec: fault.Spec{Target: fault.TargetDependency}, Kind: "latency", Detail: "latency=1000", Start: sec(at), End: sec(until)}
}

func TestRecoveryAfterDrop(t *testing.T) {
	s := series(func(t float64) float64 {
		switch {
		case t >= 11 && t <= 15:
			return 20
		case t == 16:
			return 50
		case t == 17:
			return 95 // 95% of the 100/s baseline: recovered
		}
		return 100
	}, func(t float64) float64 {
		switch {
		case t >= 10 && t <= 16:
			return 100 * (t - 9) // peaks at 700 at 16 s
		case t == 25:
			return 5000 // after recovery: not the fault's backlog
		}
		return 0
	})
	s.ErrorTimes = []float64{3, 12, 28}
	s.BreakerOpenTimes = []float64{11.5}
	m := Recovery([]Applied{applied(10, 15)}, load, s)
	if len(m) != 1 {
		t.Fatalf("got %d metrics", len(m))
	}
	got := m[0]
	if got.AtS != 10 || got.UntilS != 15 {
		t.Errorf("at/until = %v/%v, want 10/15", got.AtS, got.UntilS)
	}
	if got.RecoverySeconds != 2 {
		t.Errorf("recovery = %v, want 2 (rate back at 17 s)", got.RecoverySeconds)
	}
	if got.DetectSeconds != 1.5 {
		t.Errorf("detect = %v, want 1.5 (breaker opened at 11.5 s)", got.DetectSeconds)
	}
	if got.BacklogPeak != 700 {
		t.Errorf("backlog peak = %v, want 700", got.BacklogPeak)
	}
	if got.Kind != "latency" || got.Target != "dependency" || got.Detail != "latency=1000" || got.Err != nil {
		t.Errorf("metrics = %+v", got)
	}
}

func TestRecoveryRateNeverDropped(t *testing.T) {
	s := series(func(float64) float64 { return 100 }, func(t float64) float64 { return t })
	got := Recovery([]Applied{applied(10, 15)}, load, s)[0]
	if got.RecoverySeconds != 0 {
		t.Errorf("recovery = %v, want 0", got.RecoverySeconds)
	}
	if got.DetectSeconds != -1 {
		t.Errorf("detect = %v, want -1 without errors", got.DetectSeconds)
	}
	if got.BacklogPeak != 15 {
		t.Errorf("backlog peak = %v, want 15 (during the fault only)", got.BacklogPeak)
	}
}

func TestRecoveryNever(t *testing.T) {
	s := series(func(t float64) float64 {
		if t >= 10 {
			return 80 // below 90% of 100 for good
		}
		return 100
	}, func(t float64) float64 { return 10 * t })
	s.ErrorTimes = []float64{9.9, 29}
	got := Recovery([]Applied{applied(10, 15)}, load, s)[0]
	if got.RecoverySeconds != -1 {
		t.Errorf("recovery = %v, want -1", got.RecoverySeconds)
	}
	if got.BacklogPeak != 300 {
		t.Errorf("backlog peak = %v, want 300 (to the end of the series)", got.BacklogPeak)
	}
	if got.DetectSeconds != 19 {
		t.Errorf("detect = %v, want 19 (the error before the fault does not count)", got.DetectSeconds)
	}
}

func TestRecoveryWithoutBaseline(t *testing.T) {
	s := series(func(t float64) float64 { return 100 }, func(float64) float64 { return 0 })
	a := applied(0, 2)
	a.Err = errors.New("apply latency on dependency: boom")
	got := Recovery([]Applied{a}, load, s)[0]
	if got.RecoverySeconds != -1 || !got.NoBaseline {
		t.Errorf("recovery = %v, no baseline %v; want -1, true", got.RecoverySeconds, got.NoBaseline)
	}
	if got.Err != a.Err {
		t.Errorf("err = %v, want the fault's own", got.Err)
	}
}

func TestRecoveryInstantFault(t *testing.T) {
	// A kill: the rate dips after the instant and comes back.
	s := series(func(t float64) float64 {
		if t == 13 || t == 14 {
			return 0
		}
		return 50
	}, func(float64) float64 { return 0 })
	got := Recovery([]Applied{applied(12, 12)}, load, s)[0]
	if got.RecoverySeconds != 3 {
		t.Errorf("recovery = %v, want 3 (back at 15 s)", got.RecoverySeconds)
	}
}
