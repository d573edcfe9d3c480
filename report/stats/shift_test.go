package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHodgesLehmannEstimate(t *testing.T) {
	x := []float64{3, 1, 4, 1, 5}
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v + 2.5
	}
	if s := HodgesLehmann(x, y, 0.95); s.Estimate != 2.5 {
		t.Errorf("y = x + 2.5: estimate %v", s.Estimate)
	}
	// One value each: the estimate is their difference, and no interval exists.
	if s := HodgesLehmann([]float64{10}, []float64{13}, 0.95); s.Estimate != 3 || s.HasCI {
		t.Errorf("1 v 1: %+v", s)
	}
	if s := HodgesLehmann(nil, []float64{1}, 0.95); !math.IsNaN(s.Estimate) || s.HasCI {
		t.Errorf("empty: %+v", s)
	}
}

// Tables of the U distribution: for 5 v 5, P(U ≤ 2) = 4/252 ≤ 0.025 <
// P(U ≤ 3) = 7/252, so the 95 % interval is [d(3), d(23)] of the 25 sorted
// differences; 3 v 3 has none (P(U = 0) = 0.05).
func TestHodgesLehmannInterval(t *testing.T) {
	if k := ciRank(5, 5, 0.05); k != 3 {
		t.Errorf("ciRank(5, 5) = %d, want 3", k)
	}
	if k := ciRank(3, 3, 0.05); k != 0 {
		t.Errorf("ciRank(3, 3) = %d, want 0", k)
	}
	if k := ciRank(10, 10, 0.05); k != 24 { // critical U of 10 v 10 at 0.05 two-sided is 23
		t.Errorf("ciRank(10, 10) = %d, want 24", k)
	}
	x := []float64{1, 2, 3, 4, 5}
	y := []float64{11, 12, 13, 14, 15}
	var d []float64
	for _, a := range x {
		for _, b := range y {
			d = append(d, b-a)
		}
	}
	slices.Sort(d)
	s := HodgesLehmann(x, y, 0.95)
	if !s.HasCI || s.Low != d[2] || s.High != d[22] || s.Estimate != 10 {
		t.Errorf("5 v 5: %+v, want [%v, %v] around 10", s, d[2], d[22])
	}
	if s := HodgesLehmann([]float64{1, 2, 3}, []float64{4, 5, 6}, 0.95); s.HasCI {
		t.Errorf("3 v 3 has a 95 %% interval: %+v", s)
	}
}

// The interval covers the true shift at least as often as it claims: 2,000
// draws of normal samples 7 v 7 with a shift of 3.
func TestHodgesLehmannCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const trials, shift = 2000, 3.0
	covered := 0
	for range trials {
		x, y := make([]float64, 7), make([]float64, 7)
		for i := range x {
			x[i] = 100 + 5*rng.NormFloat64()
			y[i] = 100 + shift + 5*rng.NormFloat64()
		}
		if s := HodgesLehmann(x, y, 0.95); s.HasCI && s.Low <= shift && shift <= s.High {
			covered++
		}
	}
	if rate := float64(covered) / trials; rate < 0.94 {
		t.Errorf("95 %% interval covered the shift in %.1f %% of draws", rate*100)
	}
}
