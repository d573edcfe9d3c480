package runner

import (
	"testing"
	"time"

	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/telemetry"
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

// A black box that also speaks telemetry (a service on the runtime given a
// completion block) is counted once: from its completion events, while its
// stats and hello still count.
func TestBlackBoxCountsOutcomesFromOutsideOnly(t *testing.T) {
	l := ledger.NewWith(ledger.Options{DeadIsRecovery: true})
	for seq := range int64(2) {
		l.Published(seq)
		l.Confirmed(seq, true)
	}
	c := newCollector(l)
	c.blackBox = true
	inside := c.accept(telemetry.Hello{Worker: 0, PID: 42})
	inside.Outcome(telemetry.Outcome{Seq: 0, Kind: telemetry.Succeeded, Attempt: 3})
	inside.Redelivered(0)
	inside.Stats(telemetry.Stats{BreakerOpened: 1})
	c.external().Outcome(telemetry.Outcome{Seq: 0, Kind: telemetry.Succeeded})
	c.external().deadLettered(1, 0, 1)
	got := l.Counts()
	if got.Succeeded != 1 || got.Duplicates != 0 || got.Redelivered != 0 || got.Retries != 0 || got.Recovered != 1 || got.DeadLettered != 1 || got.Lost != 0 {
		t.Errorf("counts %+v", got)
	}
	if c.helloCount() != 1 || len(c.workerStats()) != 1 {
		t.Errorf("hellos %d, stats %v", c.helloCount(), c.workerStats())
	}
}
