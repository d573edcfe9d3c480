package runner

import (
	"testing"
	"time"

	"github.com/benchmq/bench/internal/ledger"
)

// A long run keeps only a handful of per-second histograms alive, and the
// summarised seconds report the same percentiles.
func TestPerSecondLatencyIsBounded(t *testing.T) {
	c := newCollector(ledger.New())
	c.mu.Lock()
	for sec := int64(0); sec < 3600; sec++ {
		for i := range 100 {
			c.recordSecond(sec, time.Duration(sec+1)*time.Millisecond+time.Duration(i)*time.Microsecond)
		}
	}
	live := len(c.perSec) + len(c.spare)
	c.mu.Unlock()
	if live > 2*secWindow+2 {
		t.Fatalf("%d histograms alive after an hour", live)
	}
	secs, p50, p99 := c.perSecond()
	if len(secs) != 3600 {
		t.Fatalf("%d seconds", len(secs))
	}
	for _, s := range []int{0, 100, 3599} {
		want := float64(s + 1)
		if p50[s] < want || p50[s] > want*1.02+0.1 || p99[s] < p50[s] {
			t.Fatalf("second %d: p50 %.3f p99 %.3f, want about %.0f ms", s, p50[s], p99[s], want)
		}
	}
}
