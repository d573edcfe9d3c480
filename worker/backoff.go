package worker

import (
	"math"
	"slices"
	"time"
)

// jitterSteps is how many delays below each base delay d a jittered retry can wait:
// d·2^(-k/jitterSteps) for k = 1..jitterSteps, so with d itself five delays in [d/2, d],
// each 16 % below the next.
const jitterSteps = 4

// baseDelay is the delay after failed attempt n (1-based) before jitter:
// MinDelay·2^(n-1), capped at MaxDelay when MaxDelay > 0.
func (p RetryPolicy) baseDelay(n int) time.Duration {
	d := p.MinDelay
	for i := 1; i < n; i++ {
		if p.MaxDelay > 0 && d >= p.MaxDelay {
			break
		}
		if d > math.MaxInt64/2 {
			return time.Duration(math.MaxInt64)
		}
		d *= 2
	}
	if p.MaxDelay > 0 && d > p.MaxDelay {
		d = p.MaxDelay
	}
	return d
}

// toTier is the tier delay that holds d: whole milliseconds, rounded down (never above
// d), at least 1ms.
func toTier(d time.Duration) time.Duration {
	return max(d.Truncate(time.Millisecond), time.Millisecond)
}

// tiers lists the delays, ascending and distinct, of the retry-tier queues a job can be
// given: each base delay after an attempt that can still be followed by another (so at
// most MaxAttempts-1), and with Jitter the jitterSteps delays below each of them down
// to its half. Each tier queue holds exactly one delay as its queue TTL, so a message
// never waits behind a longer one and never longer than its tier.
func (p RetryPolicy) tiers() []time.Duration {
	var ds []time.Duration
	for n := 1; n < p.MaxAttempts; n++ {
		d := p.baseDelay(n)
		ds = append(ds, toTier(d))
		if p.Jitter {
			for k := 1; k <= jitterSteps; k++ {
				ds = append(ds, toTier(time.Duration(float64(d)*math.Exp2(-float64(k)/jitterSteps))))
			}
		}
	}
	slices.Sort(ds)
	return slices.Compact(ds)
}

// delay is the wait after failed attempt n. With jitter it is drawn from [d/2, d]
// using rnd (a uniform value in [0, 1)), then rounded down to the next tier delay of
// d, d·2^(-1/4), ..., d/2, so that it is one of the tiers and never above d.
func (p RetryPolicy) delay(n int, rnd func() float64) time.Duration {
	d := p.baseDelay(n)
	if !p.Jitter {
		return d
	}
	x := float64(d) * (0.5 + 0.5*rnd())
	for k := 0; k < jitterSteps; k++ {
		if step := float64(d) * math.Exp2(-float64(k)/jitterSteps); x >= step {
			return time.Duration(step)
		}
	}
	return d / 2
}

// roundUp2 rounds d up to two significant digits of milliseconds (1ms ... 99ms, 100ms,
// 110ms, ..., 990ms, 1s, 1.1s, ...): the on-demand delay tiers of RetryAfter and After.
// Round values stay exact, the set of tiers stays bounded (90 per decade), and a delay
// is never shortened and lengthened by at most 10 %.
func roundUp2(d time.Duration) time.Duration {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms < 1 {
		return time.Millisecond
	}
	unit := time.Duration(1)
	for ms/unit >= 100 {
		unit *= 10
	}
	return (ms + unit - 1) / unit * unit * time.Millisecond
}

// retryAfterDelay is the tier of a RetryAfter(d): d rounded up to two significant
// digits, never above MaxDelay (when set) or the broker's longest TTL.
func (p RetryPolicy) retryAfterDelay(d time.Duration) time.Duration {
	r := roundUp2(max(d, 0))
	if p.MaxDelay > 0 && r > p.MaxDelay {
		r = p.MaxDelay
	}
	return min(r, maxTTL)
}
