package timeline

import (
	"math"
	"time"
)

// Recovery thresholds.
const (
	// BaselineWindow is the stretch before a fault whose mean completion rate
	// is the rate the system has to get back to.
	BaselineWindow = 5 * time.Second
	// RecoveredFraction of the baseline rate counts as recovered.
	RecoveredFraction = 0.9
)

// Series is what the runner sampled during a variant, as seconds since the
// load started.
type Series struct {
	T            []float64 // sample times
	CompleteRate []float64 // jobs completed per second over the interval ending at T[i]
	QueueReady   []float64 // messages ready in the job's queue at T[i]
	// ErrorTimes are the times of failed attempts and BreakerOpenTimes those
	// of breakers opening; either is a sign that the fault was noticed.
	ErrorTimes       []float64
	BreakerOpenTimes []float64
}

// Metrics is how the system coped with one fault.
type Metrics struct {
	AtS, UntilS float64 // the fault's real start and end since the load started
	Target      string
	Kind        string
	Detail      string
	// DetectSeconds is from the fault's start to the first error or breaker
	// opening; -1 when none was seen.
	DetectSeconds float64
	// RecoverySeconds is from the fault's end to the first sample whose
	// completion rate is back to RecoveredFraction of the baseline; 0 when
	// the rate never fell below that, -1 when it never came back or there
	// was no baseline to compare with.
	RecoverySeconds float64
	// BacklogPeak is the highest queue_ready from the fault's start to its
	// recovery (to the end of the series when it never recovered).
	BacklogPeak int64
	// NoBaseline is set when nothing completed in the BaselineWindow before
	// the fault, so recovery could not be judged.
	NoBaseline bool
	Err        error
}

// Recovery measures each applied fault against the sampled series.
func Recovery(applied []Applied, loadStart time.Time, s Series) []Metrics {
	out := make([]Metrics, 0, len(applied))
	for _, a := range applied {
		out = append(out, recovery(a, loadStart, s))
	}
	return out
}

func recovery(a Applied, loadStart time.Time, s Series) Metrics {
	at := a.Start.Sub(loadStart).Seconds()
	until := a.End.Sub(loadStart).Seconds()
	m := Metrics{
		AtS: at, UntilS: until, Target: a.Spec.Target, Kind: a.Kind, Detail: a.Detail,
		DetectSeconds: -1, RecoverySeconds: -1, Err: a.Err,
	}
	n := min(len(s.T), len(s.CompleteRate))

	var sum float64
	var count int
	for i := range n {
		if t := s.T[i]; t >= at-BaselineWindow.Seconds() && t < at {
			sum += s.CompleteRate[i]
			count++
		}
	}
	baseline := 0.0
	if count > 0 {
		baseline = sum / float64(count)
	}
	threshold := RecoveredFraction * baseline

	// recoveredAt bounds the aftermath of the fault: detection and backlog
	// are looked for up to it.
	recoveredAt := math.Inf(1)
	if baseline <= 0 {
		m.NoBaseline = true
	} else {
		dropped, decided, seen := false, false, false
		for i := range n {
			t, r := s.T[i], s.CompleteRate[i]
			if t < at {
				continue
			}
			seen = true
			if t <= until {
				dropped = dropped || r < threshold
				continue
			}
			if r < threshold {
				dropped = true
				continue
			}
			if dropped {
				m.RecoverySeconds = t - until
				recoveredAt = t
			} else {
				m.RecoverySeconds = 0
				recoveredAt = until
			}
			decided = true
			break
		}
		if seen && !decided && !dropped {
			// The series ended with the fault, and the rate held up.
			m.RecoverySeconds = 0
			recoveredAt = until
		}
	}

	first := math.Inf(1)
	for _, times := range [][]float64{s.ErrorTimes, s.BreakerOpenTimes} {
		for _, t := range times {
			if t >= at && t <= recoveredAt && t < first {
				first = t
			}
		}
	}
	if !math.IsInf(first, 1) {
		m.DetectSeconds = first - at
	}

	peak := 0.0
	for i := range min(len(s.T), len(s.QueueReady)) {
		if t := s.T[i]; t >= at && t <= recoveredAt {
			peak = max(peak, s.QueueReady[i])
		}
	}
	m.BacklogPeak = int64(peak)
	return m
}
