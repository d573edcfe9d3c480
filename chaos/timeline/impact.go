package timeline

import (
	"math"
	"slices"
	"time"
)

// ImpactSeries is what the runner sampled that tells how each fault hit the
// clients, as seconds since the load started. Columns are cumulative counts
// unless said otherwise; a nil column is not observed.
type ImpactSeries struct {
	T []float64
	// Leader is the node leading the job's queue at T[i], 0 while it has
	// none (nil: not a quorum queue on a cluster).
	Leader []float64
	// Consumers is how many workers consumed at T[i] (the lower of the
	// broker's consumer count and the workers' own reports); Workers is how
	// many should.
	Consumers []float64
	Workers   int
	// Confirmed counts publishes the broker confirmed so far; LoadEnd is
	// when the generator's last publish went out (after it, confirms stop
	// for good reason).
	Confirmed []float64
	LoadEnd   float64
	// Published counts publishes so far, in sequence order: job k (from 0)
	// went out in the first interval where Published exceeds k.
	Published   []float64
	Duplicates  []float64
	Redelivered []float64
	Unconfirmed []float64
	// Lost are the indices (from 0) of the confirmed jobs that were lost.
	Lost []int64
	// End is where the last fault's window ends: the end of the drain,
	// before the workers are stopped.
	End float64
}

// Impact is how one fault hit the clients, over its window: from its start
// to the start of the next fault (or the end of the run).
type Impact struct {
	// LeaderSeconds, ConsumeSeconds and ConfirmSeconds are from the fault's
	// start until the job's queue had a leader again, every worker consumed
	// again, and the generator's confirms flowed again, for the rest of the
	// window: 0 when it never stopped, -1 when it did not come back in the
	// window, NaN when not observed (no column).
	LeaderSeconds, ConsumeSeconds, ConfirmSeconds float64
	// Jobs published in the window that were lost (confirmed, no outcome)
	// or never confirmed; duplicates and redeliveries seen in the window.
	Lost, Unconfirmed, Duplicates, Redelivered int64
	// WindowEnd is where the window ends, in seconds since the load started.
	WindowEnd float64
}

// Impacts measures every applied fault; applied is in order of start.
func Impacts(applied []Applied, loadStart time.Time, s ImpactSeries) []Impact {
	out := make([]Impact, len(applied))
	for i, a := range applied {
		at := a.Start.Sub(loadStart).Seconds()
		wend := max(at, s.End)
		if i+1 < len(applied) {
			wend = max(at, applied[i+1].Start.Sub(loadStart).Seconds())
		}
		out[i] = impact(at, wend, s)
	}
	return out
}

func impact(at, wend float64, s ImpactSeries) Impact {
	m := Impact{WindowEnd: wend}
	m.LeaderSeconds = stall(s.T, at, wend, s.Leader, func(i int) bool { return s.Leader[i] > 0 })
	m.ConsumeSeconds = stall(s.T, at, wend, s.Consumers, func(i int) bool { return s.Consumers[i] >= float64(s.Workers) })
	// Confirms flow when the count rose since the sample before; after the
	// load's end there is nothing to confirm, so those samples do not count.
	confirmEnd := min(wend, s.LoadEnd)
	m.ConfirmSeconds = stall(s.T, at, confirmEnd, s.Confirmed, func(i int) bool { return i > 0 && s.Confirmed[i] > s.Confirmed[i-1] })
	m.Duplicates = delta(s.T, at, wend, s.Duplicates)
	m.Redelivered = delta(s.T, at, wend, s.Redelivered)
	m.Unconfirmed = delta(s.T, at, wend, s.Unconfirmed)
	lo, hi := published(s.T, at, s.Published), published(s.T, wend, s.Published)
	for _, k := range s.Lost {
		if k >= lo && k < hi {
			m.Lost++
		}
	}
	return m
}

// stall returns how long after at the condition ok held again for good
// within [at, wend): 0 when it never failed there, -1 when the last sample
// there failed, NaN without the column.
func stall(t []float64, at, wend float64, col []float64, ok func(i int) bool) float64 {
	if col == nil {
		return nan
	}
	lastBad := -1
	n := min(len(t), len(col))
	for i := range n {
		if t[i] >= at && t[i] < wend && !ok(i) {
			lastBad = i
		}
	}
	if lastBad < 0 {
		return 0
	}
	for i := lastBad + 1; i < n && t[i] < wend; i++ {
		if ok(i) {
			return t[i] - at
		}
	}
	return -1
}

// delta is how much a cumulative column grew over [at, wend): its value at
// the last sample before wend minus its value at the last before at.
func delta(t []float64, at, wend float64, col []float64) int64 {
	return int64(valueAt(t, wend, col) - valueAt(t, at, col))
}

// valueAt is the column's value at the last sample before x (0 before any).
func valueAt(t []float64, x float64, col []float64) float64 {
	i, _ := slices.BinarySearch(t[:min(len(t), len(col))], x)
	if i == 0 {
		return 0
	}
	return col[i-1]
}

// published is how many jobs were published before x.
func published(t []float64, x float64, col []float64) int64 {
	return int64(valueAt(t, x, col))
}

var nan = math.NaN()
