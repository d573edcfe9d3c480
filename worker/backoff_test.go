package worker

import (
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

func TestPickTier(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 7, MinDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}.withDefaults()
	ts := p.tiers("q")
	for _, tc := range []struct {
		d     time.Duration
		queue string
		exp   string
	}{
		{100 * time.Millisecond, "q.retry.100ms", ""},
		{400 * time.Millisecond, "q.retry.400ms", ""},
		{150 * time.Millisecond, "q.retry.200ms", "150"},
		{50 * time.Millisecond, "q.retry.100ms", "50"},
		{2 * time.Second, "q.retry.2000ms", ""},
		{time.Hour, "q.retry.2000ms", ""}, // capped at the longest tier
	} {
		tr, exp := pickTier(ts, tc.d)
		if tr.queue != tc.queue || exp != tc.exp {
			t.Errorf("pickTier(%v) = %q, %q; want %q, %q", tc.d, tr.queue, exp, tc.queue, tc.exp)
		}
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
