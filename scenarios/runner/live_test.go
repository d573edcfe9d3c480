package runner

import (
	"testing"
	"time"
)

// Rates in the progress line follow every tick of a second, and the ticks of
// a terminal in windows of about a second.
func TestRateWindow(t *testing.T) {
	start := time.Unix(100, 0)
	r := rateWindow{at: start}
	r.update(start.Add(990*time.Millisecond), 990, 495) // a tick a little early
	if r.pubRate != 1000 || r.doneRt != 500 {
		t.Errorf("after 0.99 s: %v/s, %v/s", r.pubRate, r.doneRt)
	}
	r.update(start.Add(1240*time.Millisecond), 2000, 600) // a terminal's next tick: too soon
	if r.pubRate != 1000 {
		t.Errorf("after 0.25 s more: %v/s, want the last second's", r.pubRate)
	}
	r.update(start.Add(1990*time.Millisecond), 1990, 995)
	if r.pubRate != 1000 || r.doneRt != 500 {
		t.Errorf("after 1.99 s: %v/s, %v/s", r.pubRate, r.doneRt)
	}
}
