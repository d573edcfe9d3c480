package timeline

import (
	"math"
	"testing"
	"time"
)

func TestImpacts(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec float64) time.Time { return start.Add(time.Duration(sec * float64(time.Second))) }
	// Two faults: at 2 s (window 2..6) and at 6 s (window 6..10).
	applied := []Applied{{Start: at(2), End: at(3)}, {Start: at(6), End: at(6)}}
	s := ImpactSeries{
		T:      []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		Leader: []float64{1, 1, 0, 0, 2, 2, 2, 2, 2, 2},
		// The second fault cancels the consumers; they never all come back.
		Consumers: []float64{2, 2, 1, 2, 2, 2, 1, 1, 2, 1},
		Workers:   2,
		// Confirms stall at 3 and 4 (no rise), then flow; the load ends at 8.
		Confirmed:   []float64{10, 20, 20, 20, 30, 40, 50, 60, 60, 60},
		LoadEnd:     8,
		Published:   []float64{10, 20, 30, 40, 50, 60, 70, 80, 80, 80},
		Duplicates:  []float64{0, 0, 1, 3, 3, 3, 3, 4, 4, 4},
		Redelivered: []float64{0, 0, 5, 5, 5, 5, 5, 5, 5, 5},
		Lost:        []int64{5, 25, 35, 65},
		End:         9.5,
	}
	got := Impacts(applied, start, s)
	if len(got) != 2 {
		t.Fatalf("got %d impacts", len(got))
	}
	a, b := got[0], got[1]
	// Leader none at 3 and 4, back at 5: 3 s after the fault's start.
	if a.LeaderSeconds != 3 || a.ConsumeSeconds != 2 || a.ConfirmSeconds != 3 {
		t.Errorf("first fault: leader %v consume %v confirm %v, want 3 2 3", a.LeaderSeconds, a.ConsumeSeconds, a.ConfirmSeconds)
	}
	// Window 2..6: published before 2 is 10 (sample at 1), before 6 is 50:
	// jobs 10..49, so 25 and 35 are its.
	if a.Lost != 2 || a.Duplicates != 3 || a.Redelivered != 5 || a.WindowEnd != 6 {
		t.Errorf("first fault: lost %d dup %d redelivered %d window end %v, want 2 3 5 6", a.Lost, a.Duplicates, a.Redelivered, a.WindowEnd)
	}
	// Second window 6..9.5: the leader held; consumers fell at 7, 8 and came
	// back at 9 (the sample at 10 is past the drain's end); confirms stalled at
	// 9 and 10, after the load ended, which does not count.
	if b.LeaderSeconds != 0 || b.ConsumeSeconds != 3 || b.ConfirmSeconds != 0 {
		t.Errorf("second fault: leader %v consume %v confirm %v, want 0 3 0", b.LeaderSeconds, b.ConsumeSeconds, b.ConfirmSeconds)
	}
	if b.Lost != 1 || b.Duplicates != 1 || b.Redelivered != 0 {
		t.Errorf("second fault: lost %d dup %d redelivered %d, want 1 1 0", b.Lost, b.Duplicates, b.Redelivered)
	}

	// Not back by the window's end: -1. No column: NaN.
	s.Consumers = []float64{2, 2, 1, 1, 1, 1, 1, 1, 1, 1}
	s.Leader = nil
	got = Impacts(applied[:1], start, s)
	if got[0].ConsumeSeconds != -1 || !math.IsNaN(got[0].LeaderSeconds) {
		t.Errorf("consume %v leader %v, want -1 and NaN", got[0].ConsumeSeconds, got[0].LeaderSeconds)
	}
}
