package gate

import (
	"math"
	"testing"
)

func TestSlope(t *testing.T) {
	ts := []float64{0, 1, 2, 3, 4}
	for _, tc := range []struct {
		name string
		t, v []float64
		want float64
	}{
		{"a line", ts, []float64{10, 12, 14, 16, 18}, 2},
		{"flat", ts, []float64{5, 5, 5, 5, 5}, 0},
		{"noise around a line", ts, []float64{0, 3, 2, 5, 4}, 1},
		{"falling", ts, []float64{8, 6, 4, 2, 0}, -2},
		{"NaN skipped", ts, []float64{10, math.NaN(), 14, 16, 18}, 2},
		{"one sample", []float64{1}, []float64{3}, math.NaN()},
		{"no time span", []float64{2, 2}, []float64{1, 5}, math.NaN()},
	} {
		got := Slope(tc.t, tc.v)
		if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9) {
			t.Errorf("%s: Slope = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestGrowth(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []float64
		want float64
	}{
		{"climbing", []float64{1, 2, 3, 4, 5, 6, 7, 8}, 7.5 - 1.5},
		{"flat after a warm-up spike", []float64{9, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, 0},
		{"one late spike is not growth", []float64{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 40}, 0},
		{"shrinking", []float64{8, 8, 4, 4, 2, 2, 1, 1}, -7},
		{"NaN skipped", []float64{1, math.NaN(), 1, 1, 3, 3}, 2}, // quarters of the 5 real samples: [1] and [3]
		{"too short", []float64{1, 2, 3}, math.NaN()},
	} {
		got := Growth(tc.v)
		if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9) {
			t.Errorf("%s: Growth = %v, want %v", tc.name, got, tc.want)
		}
	}
}
