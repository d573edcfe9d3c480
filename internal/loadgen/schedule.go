package loadgen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Phase kinds.
const (
	KindSpike  = "spike"
	KindSteady = "steady"
	KindRamp   = "ramp"
)

// Phase is one stage of the load, run in order.
//
//   - spike: Jobs jobs, all intended at the phase start; they go out as fast as the
//     broker takes them. The phase ends when its last job has been sent, so the
//     next phase starts at the spike's start plus the time its publishing took.
//   - steady: Rate jobs/s for For: round(Rate*For) jobs, job i intended at i/Rate.
//   - ramp: the rate rises (or falls) linearly from From to To jobs/s over Over:
//     round((From+To)/2*Over) jobs, job i intended where the cumulative count
//     reaches i.
//
// Steady and ramp phases last exactly For and Over, whether or not the generator
// kept up. Size is the body size in bytes (0: an empty body).
type Phase struct {
	Kind     string
	Jobs     int64
	Rate     float64
	For      time.Duration
	From, To float64
	Over     time.Duration
	Size     int
}

// Count returns how many jobs the phase schedules (0 for an unknown kind).
func (p Phase) Count() int64 {
	switch p.Kind {
	case KindSpike:
		return max(p.Jobs, 0)
	case KindSteady:
		return int64(math.Round(p.Rate * p.For.Seconds()))
	case KindRamp:
		return int64(math.Round((p.From + p.To) / 2 * p.Over.Seconds()))
	}
	return 0
}

// Duration returns the scheduled length of a steady or ramp phase; a spike's is
// 0 because it lasts as long as publishing its jobs takes.
func (p Phase) Duration() time.Duration {
	switch p.Kind {
	case KindSteady:
		return p.For
	case KindRamp:
		return p.Over
	}
	return 0
}

// Validate reports everything wrong with the phase.
func (p Phase) Validate() error {
	var errs []error
	switch p.Kind {
	case KindSpike:
		if p.Jobs <= 0 {
			errs = append(errs, fmt.Errorf("spike: jobs must be positive, got %d", p.Jobs))
		}
	case KindSteady:
		if !(p.Rate > 0) || math.IsInf(p.Rate, 0) {
			errs = append(errs, fmt.Errorf("steady: rate must be positive, got %g/s", p.Rate))
		}
		if p.For <= 0 {
			errs = append(errs, fmt.Errorf("steady: for must be positive, got %s", p.For))
		}
	case KindRamp:
		if !(p.From >= 0) || !(p.To >= 0) || math.IsInf(p.From, 0) || math.IsInf(p.To, 0) {
			errs = append(errs, fmt.Errorf("ramp: rates must be finite and not negative, got %g/s to %g/s", p.From, p.To))
		}
		if p.Over <= 0 {
			errs = append(errs, fmt.Errorf("ramp: over must be positive, got %s", p.Over))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown kind %q (want spike, steady or ramp)", p.Kind))
	}
	if p.Size < 0 {
		errs = append(errs, fmt.Errorf("size must not be negative, got %d", p.Size))
	}
	if len(errs) == 0 && p.Count() == 0 {
		errs = append(errs, fmt.Errorf("%s schedules no jobs", p.Kind))
	}
	return errors.Join(errs...)
}

// TotalJobs returns how many jobs the phases schedule together.
func TotalJobs(phases []Phase) int64 {
	var n int64
	for _, p := range phases {
		n += p.Count()
	}
	return n
}

// Job is one scheduled publish.
type Job struct {
	// Index is the job's position in the whole schedule, from 0.
	Index int64
	// Phase is the index of the phase the job belongs to.
	Phase int
	// Offset is the intended send time relative to the start of its phase.
	Offset time.Duration
	// Size is the body size in bytes.
	Size int
	// Spike is set for jobs of a spike phase: all intended at once, so their
	// lateness is not counted.
	Spike bool
}

// Schedule yields the jobs of a list of phases in order, computing each job's
// intended time on demand: O(1) memory however many jobs there are. Phases should
// have passed Validate; an invalid one yields no jobs.
type Schedule struct {
	phases []Phase
	phase  int
	i      int64 // index within the current phase
	n      int64 // jobs in the current phase
	index  int64
}

// NewSchedule returns a schedule over phases.
func NewSchedule(phases []Phase) *Schedule {
	s := &Schedule{phases: phases}
	if len(phases) > 0 {
		s.n = phases[0].Count()
	}
	return s
}

// Next returns the next job, or ok=false when the schedule is exhausted.
func (s *Schedule) Next() (job Job, ok bool) {
	for s.i >= s.n {
		s.phase++
		if s.phase >= len(s.phases) {
			s.phase = len(s.phases)
			return Job{}, false
		}
		s.i, s.n = 0, s.phases[s.phase].Count()
	}
	p := s.phases[s.phase]
	job = Job{Index: s.index, Phase: s.phase, Offset: offset(p, s.i), Size: p.Size, Spike: p.Kind == KindSpike}
	s.i++
	s.index++
	return job, true
}

// offset is job i's intended time relative to the start of phase p.
func offset(p Phase, i int64) time.Duration {
	switch p.Kind {
	case KindSteady:
		return seconds(float64(i) / p.Rate)
	case KindRamp:
		return seconds(rampTime(p.From, p.To, p.Over.Seconds(), float64(i)))
	}
	return 0
}

// rampTime solves N(t) = k for t, where N(t) = from·t + (to−from)·t²/(2·over) is
// the number of jobs a linear ramp has sent by t. The form 2k/(b+√(b²+4ak)) avoids
// cancelling when the ramp is flat (a → 0) and stays finite when from is 0.
func rampTime(from, to, over, k float64) float64 {
	if k <= 0 {
		return 0
	}
	a := (to - from) / (2 * over)
	disc := max(from*from+4*a*k, 0) // rounding at the end of a falling ramp
	den := from + math.Sqrt(disc)
	if den <= 0 {
		return over
	}
	return min(2*k/den, over)
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }
