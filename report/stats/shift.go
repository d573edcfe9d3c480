package stats

import (
	"math"
	"slices"
)

// Shift estimates how far y lies from x (y − x) with the Hodges–Lehmann
// estimator, the median of all pairwise differences, and its distribution-free
// confidence interval (Moses), the interval the rank test inverts to.
type Shift struct {
	Estimate float64
	// Low and High bound the shift at Confidence; HasCI is false when the
	// samples are too small for an interval at that confidence.
	Low, High  float64
	Confidence float64
	HasCI      bool
}

// HodgesLehmann returns the shift of y against x and its interval at the given
// confidence (e.g. 0.95). It returns a NaN estimate when a sample is empty.
func HodgesLehmann(x, y []float64, confidence float64) Shift {
	s := Shift{Estimate: math.NaN(), Low: math.NaN(), High: math.NaN(), Confidence: confidence}
	n, m := len(x), len(y)
	if n == 0 || m == 0 {
		return s
	}
	d := make([]float64, 0, n*m)
	for _, xv := range x {
		for _, yv := range y {
			d = append(d, yv-xv)
		}
	}
	slices.Sort(d)
	s.Estimate = Median(d)
	if k := ciRank(n, m, 1-confidence); k >= 1 {
		s.Low, s.High, s.HasCI = d[k-1], d[len(d)-k], true
	}
	return s
}

// ciRank is the largest k with P(U ≤ k−1) ≤ alpha/2 under the null
// distribution of U without ties: the interval [d(k), d(nm−k+1)] of the sorted
// pairwise differences then covers the shift with confidence ≥ 1−alpha. It is
// 0 when no k qualifies (the samples are too small).
func ciRank(n, m int, alpha float64) int {
	N := n + m
	if N > exactLimit {
		sd := math.Sqrt(float64(n*m) * float64(N+1) / 12)
		k := int(math.Floor(float64(n*m)/2 - normalQuantile(1-alpha/2)*sd))
		return max(k, 0)
	}
	ranks2 := make([]int, N)
	for i := range ranks2 {
		ranks2[i] = 2 * (i + 1)
	}
	dist := rankSumDist(ranks2, m)
	var total float64
	for _, c := range dist {
		total += c
	}
	// Doubled rank sum of the smallest possible y: U = 0 there.
	base := m * (m + 1)
	k, cum := 0, 0.0
	for u := 0; u <= n*m; u++ {
		if base+2*u < len(dist) {
			cum += dist[base+2*u]
		}
		if cum/total > alpha/2 {
			break
		}
		k = u + 1
	}
	return k
}

// normalQuantile is the inverse of the standard normal distribution function.
func normalQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }
