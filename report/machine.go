package report

import (
	"math"

	"github.com/benchmq/bench/report/stats"
)

// Capacity is the broker+machine's raw capacity a calibration measured, in
// messages per second: the geometric mean of the publish and consume rates,
// so that either halving halves it by the same factor. 0 when not measured.
func (c *Calibration) Capacity() float64 {
	if c == nil || c.PublishPerS <= 0 || c.ConsumePerS <= 0 {
		return 0
	}
	return math.Sqrt(c.PublishPerS * c.ConsumePerS)
}

// capacities returns every run's calibrated capacity of v: from Runs when v
// combines repeated runs, else its one calibration. nil when not measured.
func capacities(v *Variant) []float64 {
	pub, con := v.Runs["calibration_publish_per_s"], v.Runs["calibration_consume_per_s"]
	if len(pub) > 0 && len(pub) == len(con) {
		out := make([]float64, len(pub))
		for i := range pub {
			out[i] = (&Calibration{PublishPerS: pub[i], ConsumePerS: con[i]}).Capacity()
			if out[i] == 0 {
				return nil
			}
		}
		return out
	}
	if c := v.Calibration.Capacity(); c > 0 {
		return []float64{c}
	}
	return nil
}

// MachineFactor is how fast the new variant's broker+machine was against the
// baseline's: the ratio of their median calibrated capacities (0.8: the new
// machine moves 20 % fewer messages). ok is false when either side was not
// calibrated.
func MachineFactor(base, cur *Variant) (factor float64, ok bool) {
	b, c := capacities(base), capacities(cur)
	if len(b) == 0 || len(c) == 0 {
		return 0, false
	}
	return stats.Median(c) / stats.Median(b), true
}

// Saturated reports whether the variant's workers fell behind its load: the
// drain took a second or more, or the queue held more than a second of the
// publish rate. Then its throughput is the capacity of the workers on that
// machine, which the comparison normalises by the machine factor; without
// saturation throughput is the offered load and is compared as it is.
func Saturated(v *Variant) bool {
	return v.DrainSeconds >= 1 || float64(v.Peak.QueueReady) > v.Throughput.PublishPerS
}
