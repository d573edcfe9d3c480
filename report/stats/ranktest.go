// Package stats holds the statistics of the baseline comparison: medians, the
// Mann–Whitney U rank test (exact for small samples, ties included), the
// Hodges–Lehmann shift with its distribution-free confidence interval, and the
// verdict built on them. It knows nothing of bench's metrics: values in,
// numbers and a verdict out. benchstat is the model: a difference counts only
// when the rank test says it is outside the noise.
package stats

import (
	"math"
	"slices"
)

// exactLimit is the largest combined sample size whose rank-sum distribution
// is enumerated exactly; above it the normal approximation is close enough.
const exactLimit = 60

// Median returns the median of xs; NaN for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// RankTest is the outcome of a two-sided Mann–Whitney U test.
type RankTest struct {
	// U is the statistic of the second sample: the number of pairs (x, y)
	// with y > x, ties counting one half. nm/2 means no shift at all.
	U float64
	// P is the two-sided p-value: the chance, were both samples drawn from one
	// distribution, of a U at least this far from nm/2.
	P float64
	// Exact is false when P comes from the normal approximation.
	Exact bool
}

// MannWhitney tests whether y is shifted against x. It returns P = 1 when
// either sample is empty. With ties the exact distribution is the
// permutation distribution of the midranks, so ties cost no accuracy.
func MannWhitney(x, y []float64) RankTest {
	n, m := len(x), len(y)
	if n == 0 || m == 0 {
		return RankTest{P: 1, Exact: true}
	}
	ranks2 := doubledMidranks(x, y) // ranks ×2, so that midranks stay integers
	var w2 int                      // doubled rank sum of y
	for _, r := range ranks2[n:] {
		w2 += r
	}
	u := float64(w2)/2 - float64(m*(m+1))/2
	if n+m > exactLimit {
		return RankTest{U: u, P: normalP(ranks2, n, m, u), Exact: false}
	}
	dist := rankSumDist(ranks2, m)
	mean2 := m * (n + m + 1) // doubled expected rank sum
	dev := abs(w2 - mean2)
	var total, tail float64
	for s, c := range dist {
		total += c
		if abs(s-mean2) >= dev {
			tail += c
		}
	}
	return RankTest{U: u, P: math.Min(1, tail/total), Exact: true}
}

// MinP is the smallest two-sided p-value the rank test can give for samples of
// n and m values: when it is not below the significance level, no difference,
// however large, can be told from noise.
func MinP(n, m int) float64 {
	if n == 0 || m == 0 {
		return 1
	}
	return math.Min(1, 2/binomial(n+m, n))
}

// doubledMidranks returns 2×the midrank of every value of x then y in the
// combined sample.
func doubledMidranks(x, y []float64) []int {
	type item struct {
		v float64
		i int
	}
	all := make([]item, 0, len(x)+len(y))
	for i, v := range x {
		all = append(all, item{v, i})
	}
	for i, v := range y {
		all = append(all, item{v, len(x) + i})
	}
	slices.SortStableFunc(all, func(a, b item) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	out := make([]int, len(all))
	for lo := 0; lo < len(all); {
		hi := lo + 1
		for hi < len(all) && all[hi].v == all[lo].v {
			hi++
		}
		// Positions lo..hi-1 hold ranks lo+1..hi; their mean doubled is lo+1+hi.
		for k := lo; k < hi; k++ {
			out[all[k].i] = lo + 1 + hi
		}
		lo = hi
	}
	return out
}

// rankSumDist counts, for every doubled rank sum s, the subsets of k of the
// given doubled ranks that sum to s: the rank sum's null distribution.
func rankSumDist(ranks2 []int, k int) []float64 {
	maxSum := 0
	sorted := slices.Clone(ranks2)
	slices.Sort(sorted)
	for _, r := range sorted[len(sorted)-k:] {
		maxSum += r
	}
	// ways[j][s]: subsets of j of the ranks seen so far with doubled sum s.
	ways := make([][]float64, k+1)
	for j := range ways {
		ways[j] = make([]float64, maxSum+1)
	}
	ways[0][0] = 1
	for i, r := range ranks2 {
		for j := min(i+1, k); j >= 1; j-- {
			prev, cur := ways[j-1], ways[j]
			for s := maxSum; s >= r; s-- {
				cur[s] += prev[s-r]
			}
		}
	}
	return ways[k]
}

// normalP is the two-sided p-value of U from the normal approximation, with
// the tie correction of the variance and a continuity correction.
func normalP(ranks2 []int, n, m int, u float64) float64 {
	N := float64(n + m)
	counts := map[int]float64{}
	for _, r := range ranks2 {
		counts[r]++
	}
	var ties float64
	for _, t := range counts {
		ties += t*t*t - t
	}
	variance := float64(n*m) / 12 * ((N + 1) - ties/(N*(N-1)))
	if variance <= 0 {
		return 1 // every value equal: no evidence of any shift
	}
	d := math.Abs(u-float64(n*m)/2) - 0.5
	if d < 0 {
		d = 0
	}
	return math.Min(1, math.Erfc(d/math.Sqrt(variance)/math.Sqrt2))
}

func binomial(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
