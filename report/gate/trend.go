package gate

import (
	"math"
	"slices"
)

// The trend functions of series gates: slope(series) and growth(series) in a
// gate (`growth(runner_rss) < 32MiB`) read a sampled series through them, so
// that a long run fails when memory keeps climbing, not when it is merely
// high. Both skip NaN samples and return NaN when the series is too short to
// say.

// Slope returns the least-squares slope of v over t (units of v per unit of
// t): how fast the series grows on average. It needs two samples at
// different times.
func Slope(t, v []float64) float64 {
	var n, st, sv, stt, stv float64
	for i := range min(len(t), len(v)) {
		if math.IsNaN(t[i]) || math.IsNaN(v[i]) {
			continue
		}
		n++
		st += t[i]
		sv += v[i]
		stt += t[i] * t[i]
		stv += t[i] * v[i]
	}
	den := n*stt - st*st
	if n < 2 || den <= 0 {
		return math.NaN()
	}
	return (n*stv - st*sv) / den
}

// Growth returns how much v rose from its first quarter to its last: the
// median of the last quarter of the samples minus the median of the first.
// Medians, so that one spike (a GC cycle, a burst) neither makes nor hides
// growth. It needs four samples.
func Growth(v []float64) float64 {
	v = slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	q := len(v) / 4
	if q < 1 {
		return math.NaN()
	}
	return median(v[len(v)-q:]) - median(v[:q])
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
