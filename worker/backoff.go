package worker

import (
	"math"
	"strconv"
	"time"
)

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

// delay is the wait after failed attempt n. With jitter it is drawn from [d/2, d]
// using rnd (a uniform value in [0, 1)), so it never exceeds the un-jittered delay.
func (p RetryPolicy) delay(n int, rnd func() float64) time.Duration {
	d := p.baseDelay(n)
	if p.Jitter {
		half := d / 2
		d = d - half + time.Duration(rnd()*float64(half+1))
		if m := p.baseDelay(n); d > m {
			d = m
		}
	}
	return d
}

// tier is one TTL retry queue.
type tier struct {
	delay time.Duration
	queue string
}

// tiers lists the distinct base delays a job of queue can be given, ascending: one per
// attempt that can still be followed by another, so at most MaxAttempts-1 queues.
func (p RetryPolicy) tiers(queue string) []tier {
	var ts []tier
	for n := 1; n < p.MaxAttempts; n++ {
		d := p.baseDelay(n)
		if len(ts) > 0 && ts[len(ts)-1].delay == d {
			continue
		}
		ts = append(ts, tier{delay: d, queue: retryQueue(queue, d.Milliseconds())})
	}
	return ts
}

// pickTier returns the shortest tier that holds at least d, or the longest when d is
// longer than every tier, and the per-message expiration (milliseconds) that shortens
// the wait to d, or "" when the tier's TTL is the wait. A per-message expiration can be
// delayed by earlier messages of the same tier, but never beyond the tier's TTL, and
// different delays never share a tier's head.
func pickTier(ts []tier, d time.Duration) (tier, string) {
	for _, t := range ts {
		if t.delay >= d {
			if t.delay == d || d.Milliseconds() == t.delay.Milliseconds() {
				return t, ""
			}
			ms := max(d.Milliseconds(), 0)
			return t, strconv.FormatInt(ms, 10)
		}
	}
	return ts[len(ts)-1], ""
}
