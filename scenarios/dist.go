package scenarios

import (
	"math"
	"math/rand/v2"
	"time"
)

// Dist kinds.
const (
	DistFixed       = "fixed"
	DistExponential = "exponential"
	DistLognormal   = "lognormal"
)

// z99 is the standard normal quantile of 0.99: a lognormal's p99 is p50·e^(σ·z99).
const z99 = 2.326

// Dist is a distribution of durations: how long a simulated job works.
// The zero value always samples 0.
type Dist struct {
	Kind  string        `json:"kind"`            // fixed | exponential | lognormal
	Fixed time.Duration `json:"fixed,omitempty"` // fixed
	Mean  time.Duration `json:"mean,omitempty"`  // exponential
	P50   time.Duration `json:"p50,omitempty"`   // lognormal median
	P99   time.Duration `json:"p99,omitempty"`   // lognormal 99th percentile
}

// Sample draws one duration. r may be nil to use the global source.
func (d Dist) Sample(r *rand.Rand) time.Duration {
	var v float64
	switch d.Kind {
	case DistFixed:
		return d.Fixed
	case DistExponential:
		if r != nil {
			v = r.ExpFloat64()
		} else {
			v = rand.ExpFloat64()
		}
		v *= float64(d.Mean)
	case DistLognormal:
		if d.P50 <= 0 {
			return 0
		}
		var z float64
		if r != nil {
			z = r.NormFloat64()
		} else {
			z = rand.NormFloat64()
		}
		sigma := math.Log(float64(d.P99)/float64(d.P50)) / z99
		v = float64(d.P50) * math.Exp(sigma*z)
	default:
		return 0
	}
	// The tails are unbounded; a duration must not overflow.
	if v >= math.MaxInt64 || math.IsNaN(v) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(v)
}

// MeanDuration is the distribution's expected value.
func (d Dist) MeanDuration() time.Duration {
	switch d.Kind {
	case DistFixed:
		return d.Fixed
	case DistExponential:
		return d.Mean
	case DistLognormal:
		if d.P50 <= 0 {
			return 0
		}
		sigma := math.Log(float64(d.P99)/float64(d.P50)) / z99
		return time.Duration(float64(d.P50) * math.Exp(sigma*sigma/2))
	}
	return 0
}
