package perf

import (
	"fmt"
	"slices"
)

// Spread summarises repeated measurements of one figure: runs on a shared machine
// are noisy, so the median is the figure and min–max shows how much to trust it.
type Spread struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// Summarize returns the spread of vs (in the order given). An empty vs gives the
// zero Spread.
func Summarize(vs []float64) Spread {
	if len(vs) == 0 {
		return Spread{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	mid := len(s) / 2
	med := s[mid]
	if len(s)%2 == 0 {
		med = (s[mid-1] + s[mid]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[len(s)-1], Values: slices.Clone(vs)}
}

// Ratios divides a by b pairwise: the ratio of two implementations is taken
// within each repetition, where both ran under the same machine load. Pairs with a
// zero divisor are skipped.
func Ratios(a, b []float64) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, 0, n)
	for i := range n {
		if b[i] != 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// formatRate prints msgs/s compactly: 9612 -> "9.61k".
func formatRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// formatBytes prints a byte count in MiB with one decimal.
func formatBytes(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }

// format prints "median [min–max]" with f formatting each value.
func (s Spread) format(f func(float64) string) string {
	if len(s.Values) == 0 {
		return "-"
	}
	if len(s.Values) == 1 {
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

func formatRatio(v float64) string { return fmt.Sprintf("%.3f", v) }
