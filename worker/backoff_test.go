package worker

import (
	"slices"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, MinDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := p.delay(i+1, nil); got != w*time.Millisecond {
			t.Errorf("delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	unbounded := RetryPolicy{MinDelay: time.Second}.withDefaults()
	if got := unbounded.delay(40, nil); got <= 0 {
		t.Errorf("unbounded delay(40) overflowed: %v", got)
	}
	if got := unbounded.delay(4, nil); got != 8*time.Second {
		t.Errorf("unbounded delay(4) = %v, want 8s", got)
	}

	p.Jitter = true
	for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
		rnd := func() float64 { return r }
		for n := 1; n <= 6; n++ {
			base := p.baseDelay(n)
			got := p.delay(n, rnd)
			if got < base/2 || got > base || got > p.MaxDelay {
				t.Errorf("jittered delay(%d) with rand %v = %v, want in [%v, %v]", n, r, got, base/2, base)
			}
		}
	}
	if a, b := p.delay(3, func() float64 { return 0 }), p.delay(3, func() float64 { return 0.9 }); a >= b {
		t.Errorf("jitter does not vary the delay: %v, %v", a, b)
	}
}

// Every delay a policy can give is one of its tier queues' TTLs, jittered or not, and
// never above the base delay or MaxDelay: "never above max" holds by construction.
func TestJitteredDelaysAreTiers(t *testing.T) {
	for _, p := range []RetryPolicy{
		{MaxAttempts: 7, MinDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second, Jitter: true},
		{MaxAttempts: 4, MinDelay: 3 * time.Millisecond, Jitter: true},
		{MaxAttempts: 2, MinDelay: 400 * time.Millisecond, MaxDelay: 400 * time.Millisecond, Jitter: true},
		{MaxAttempts: 5, MinDelay: 333 * time.Millisecond, MaxDelay: 1234 * time.Millisecond},
	} {
		p = p.withDefaults()
		tiers := p.tiers()
		if !slices.IsSorted(tiers) || len(slices.Compact(slices.Clone(tiers))) != len(tiers) {
			t.Errorf("%+v: tiers %v not ascending and distinct", p, tiers)
		}
		perBase := 1
		if p.Jitter {
			perBase += jitterSteps
		}
		if len(tiers) > (p.MaxAttempts-1)*perBase {
			t.Errorf("%+v: %d tiers, more than %d", p, len(tiers), (p.MaxAttempts-1)*perBase)
		}
		for n := 1; n < p.MaxAttempts; n++ {
			base := p.baseDelay(n)
			seen := map[time.Duration]bool{}
			for i := range 1000 {
				r := float64(i) / 1000
				d := toTier(p.delay(n, func() float64 { return r }))
				if !slices.Contains(tiers, d) {
					t.Fatalf("%+v: delay(%d, %v) = %v is not a tier of %v", p, n, r, d, tiers)
				}
				if d > base || (p.MaxDelay > 0 && d > p.MaxDelay) || d < toTier(base/2) {
					t.Fatalf("%+v: delay(%d, %v) = %v outside [%v, %v]", p, n, r, d, base/2, base)
				}
				seen[d] = true
			}
			// Below ~20ms whole milliseconds merge some steps; above, a draw reaches
			// every step but the half, which only a draw of exactly 0 gives.
			if p.Jitter && base >= 20*time.Millisecond && len(seen) != jitterSteps {
				t.Errorf("%+v: attempt %d drew %d distinct delays, want %d", p, n, len(seen), jitterSteps)
			}
		}
	}
}

func TestRoundUp2(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, time.Millisecond},
		{time.Microsecond, time.Millisecond},
		{7 * time.Millisecond, 7 * time.Millisecond},
		{99 * time.Millisecond, 99 * time.Millisecond},
		{101 * time.Millisecond, 110 * time.Millisecond},
		{10 * time.Second, 10 * time.Second},
		{3*time.Second + time.Nanosecond, 3100 * time.Millisecond},
		{7*time.Minute + 13*time.Second, 7*time.Minute + 20*time.Second},
		{time.Hour, time.Hour},
	} {
		if got := roundUp2(tc.in); got != tc.want {
			t.Errorf("roundUp2(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for d := time.Millisecond; d < 100*time.Hour; d = d*13/10 + time.Millisecond {
		if r := roundUp2(d); r < d || float64(r) > 1.1*float64(d)+float64(time.Millisecond) {
			t.Fatalf("roundUp2(%v) = %v: more than 10%% longer, or shorter", d, r)
		}
	}
	p := RetryPolicy{MaxDelay: 5 * time.Second}.withDefaults()
	if got := p.retryAfterDelay(time.Hour); got != 5*time.Second {
		t.Errorf("retryAfterDelay(1h) with max 5s = %v", got)
	}
	if got := p.retryAfterDelay(-time.Second); got != time.Millisecond {
		t.Errorf("retryAfterDelay(-1s) = %v", got)
	}
}

func TestReconnectDelay(t *testing.T) {
	half := func() float64 { return 0.5 }
	prev := time.Duration(0)
	for n := 0; n < 20; n++ {
		d := reconnectDelay(n, half)
		if d < prev || d > reconnectMaxDelay || d < reconnectMinDelay/2 {
			t.Fatalf("reconnectDelay(%d) = %v after %v", n, d, prev)
		}
		prev = d
	}
	if prev < reconnectMaxDelay/2 {
		t.Errorf("reconnect delay never reaches the cap: %v", prev)
	}
}
