package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestMedian(t *testing.T) {
	xs := []float64{4, 1, 3, 2}
	if got := Median(xs); got != 2.5 {
		t.Errorf("median of 4 = %v, want 2.5", got)
	}
	if xs[0] != 4 {
		t.Error("Median sorted its input")
	}
	if got := Median([]float64{3, 9, 1}); got != 3 {
		t.Errorf("median of 3 = %v, want 3", got)
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

// Published values: fully separated samples have p = 2/C(n+m, n); R's
// wilcox.test example (x, y below) gives W = 35, one-sided p = 0.1272.
func TestMannWhitneyKnownValues(t *testing.T) {
	for _, c := range []struct {
		name  string
		x, y  []float64
		u, p  float64
		exact bool
	}{
		{"3 v 3 separated", []float64{1, 2, 3}, []float64{4, 5, 6}, 9, 0.1, true},
		{"5 v 5 separated", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 25, 2.0 / 252, true},
		{"5 v 5 reversed", []float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}, 0, 2.0 / 252, true},
		{"identical", []float64{1, 2, 3}, []float64{1, 2, 3}, 4.5, 1, true},
		{"all equal", []float64{5, 5, 5}, []float64{5, 5}, 3, 1, true},
		{"R example", []float64{1.15, 0.88, 0.90, 0.74, 1.21},
			[]float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}, 35, 2 * 0.1272, true},
	} {
		got := MannWhitney(c.x, c.y)
		if got.U != c.u || !near(got.P, c.p, 5e-4) || got.Exact != c.exact {
			t.Errorf("%s: %+v, want U %v p %.4f", c.name, got, c.u, c.p)
		}
	}
	if got := MannWhitney(nil, []float64{1}); got.P != 1 {
		t.Errorf("empty sample: %+v", got)
	}
}

// The exact p-value with ties is the permutation distribution of midranks:
// checked against enumerating every split of the pooled values.
func TestMannWhitneyExactMatchesEnumeration(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n, m := 1+rng.IntN(6), 1+rng.IntN(6)
		x, y := make([]float64, n), make([]float64, m)
		for i := range x {
			x[i] = float64(rng.IntN(5)) // few distinct values: many ties
		}
		for i := range y {
			y[i] = float64(rng.IntN(5) + rng.IntN(2))
		}
		got := MannWhitney(x, y)
		if want := enumerateP(x, y); !near(got.P, want, 1e-9) {
			t.Fatalf("trial %d x=%v y=%v: p %v, enumeration %v", trial, x, y, got.P, want)
		}
	}
}

// enumerateP is the two-sided permutation p-value of U, by brute force.
func enumerateP(x, y []float64) float64 {
	pool := append(append([]float64{}, x...), y...)
	uOf := func(a, b []float64) float64 {
		var u float64
		for _, av := range a {
			for _, bv := range b {
				switch {
				case bv > av:
					u++
				case bv == av:
					u += 0.5
				}
			}
		}
		return u
	}
	n, m := len(x), len(y)
	center := float64(n*m) / 2
	obs := math.Abs(uOf(x, y) - center)
	var hits, total float64
	for mask := 0; mask < 1<<len(pool); mask++ {
		var a, b []float64
		for i, v := range pool {
			if mask&(1<<i) != 0 {
				b = append(b, v)
			} else {
				a = append(a, v)
			}
		}
		if len(b) != m {
			continue
		}
		total++
		if math.Abs(uOf(a, b)-center) >= obs-1e-9 {
			hits++
		}
	}
	return hits / total
}

// Above the exact limit the normal approximation takes over; for two large
// samples from one distribution p is large, for a clear shift tiny.
func TestMannWhitneyNormalApproximation(t *testing.T) {
	var x, y, z []float64
	for i := range 40 {
		x = append(x, float64(i))
		y = append(y, float64(i)+0.5)
		z = append(z, float64(i)+30)
	}
	same := MannWhitney(x, y)
	if same.Exact || same.P < 0.5 {
		t.Errorf("half-step shift of 40 v 40: %+v, want approximate p > 0.5", same)
	}
	// U of z = 40·40 − (pairs with x > z) = 1600 − 45 ... far from 800.
	far := MannWhitney(x, z)
	if far.Exact || far.P > 1e-8 {
		t.Errorf("shift by 30 of 0..39: %+v, want p < 1e-8", far)
	}
	// The approximation agrees with the exact value near the limit.
	var a, b []float64
	for i := range 30 {
		a = append(a, float64(i))
		b = append(b, float64(i)+4)
	}
	exact := MannWhitney(a, b)
	approx := normalP(doubledMidranks(a, b), 30, 30, exact.U)
	if !exact.Exact || !near(exact.P, approx, 0.01) {
		t.Errorf("30 v 30: exact p %v, normal %v", exact.P, approx)
	}
}

func TestMinP(t *testing.T) {
	for _, c := range []struct {
		n, m int
		want float64
	}{
		{1, 1, 1}, {1, 3, 0.5}, {3, 3, 0.1}, {5, 5, 2.0 / 252}, {0, 4, 1},
	} {
		if got := MinP(c.n, c.m); !near(got, c.want, 1e-12) {
			t.Errorf("MinP(%d, %d) = %v, want %v", c.n, c.m, got, c.want)
		}
	}
}
