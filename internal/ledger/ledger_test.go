package ledger

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run publishes and confirms n jobs, then reports each job's completion through
// complete, which may drop or repeat some.
func run(n int64, complete func(l *Ledger, seq int64)) Counts {
	l := New()
	for seq := int64(0); seq < n; seq++ {
		l.Published(seq)
		l.Confirmed(seq, true)
	}
	for seq := int64(0); seq < n; seq++ {
		complete(l, seq)
	}
	return l.Counts()
}

func TestExactWhenEveryJobCompletesOnce(t *testing.T) {
	c := run(100_000, func(l *Ledger, seq int64) { l.Final(seq, Succeeded, 1) })
	if c.Lost != 0 || c.Duplicates != 0 || c.Succeeded != 100_000 || c.Final != 100_000 {
		t.Fatalf("counts = %+v", c)
	}
}

func TestDroppedCompletionIsLost(t *testing.T) {
	const dropped = 70_001 // in the second chunk
	c := run(100_000, func(l *Ledger, seq int64) {
		if seq != dropped {
			l.Final(seq, Succeeded, 1)
		}
	})
	if c.Lost != 1 || c.Duplicates != 0 || c.Succeeded != 99_999 {
		t.Fatalf("counts = %+v", c)
	}
	l := New()
	l.Published(dropped)
	l.Confirmed(dropped, true)
	if got := l.LostSeqs(10); len(got) != 1 || got[0] != dropped {
		t.Fatalf("LostSeqs = %v, want [%d]", got, dropped)
	}
}

func TestDuplicatedCompletionIsCounted(t *testing.T) {
	c := run(1000, func(l *Ledger, seq int64) {
		l.Final(seq, Succeeded, 1)
		if seq == 500 {
			l.Final(seq, Succeeded, 1)
		}
	})
	if c.Lost != 0 || c.Duplicates != 1 || c.Succeeded != 1000 || c.Final != 1000 {
		t.Fatalf("counts = %+v", c)
	}
}

func TestRecoveryAndDeadLetterAreOneOutcome(t *testing.T) {
	l := New()
	for seq := int64(0); seq < 4; seq++ {
		l.Published(seq)
		l.Confirmed(seq, true)
	}
	// Either order of the two records of one exhausted job.
	l.Final(0, Recovered, 5)
	l.Final(0, DeadLettered, 5)
	l.Final(1, DeadLettered, 5)
	l.Final(1, Recovered, 5)
	// A job recovered twice (its ack was lost and it ran out again).
	l.Final(2, Recovered, 3)
	l.Final(2, Recovered, 3)
	// A job that succeeded and was later dead-lettered too.
	l.Final(3, Succeeded, 1)
	l.Final(3, DeadLettered, 2)
	c := l.Counts()
	want := Counts{Published: 4, Confirmed: 4, Succeeded: 1, Recovered: 3, DeadLettered: 3, Final: 4, Duplicates: 2, Retries: 4 + 4 + 2}
	if c != want {
		t.Fatalf("counts = %+v\nwant     %+v", c, want)
	}
}

// Seen from the outside, a dead-lettered job is a recovered one: counted
// once whether its failure event came too, before or after, or not at all.
func TestDeadIsRecovery(t *testing.T) {
	l := NewWith(Options{DeadIsRecovery: true})
	for seq := int64(0); seq < 5; seq++ {
		l.Published(seq)
		l.Confirmed(seq, true)
	}
	l.Final(0, DeadLettered, 0) // parked only
	l.Final(1, Recovered, 0)    // announced only
	l.Final(2, Recovered, 0)    // both, either order
	l.Final(2, DeadLettered, 0)
	l.Final(3, DeadLettered, 0)
	l.Final(3, Recovered, 0)
	l.Final(4, DeadLettered, 0) // parked twice: a duplicate
	l.Final(4, DeadLettered, 0)
	c := l.Counts()
	want := Counts{Published: 5, Confirmed: 5, Recovered: 5, DeadLettered: 4, Final: 5, Duplicates: 1}
	if c != want {
		t.Fatalf("counts = %+v\nwant     %+v", c, want)
	}
}

func TestUnconfirmedJobsAreNotLost(t *testing.T) {
	l := New()
	l.Published(0)
	l.Confirmed(0, false)
	l.Published(1)
	l.Confirmed(1, false)
	l.Final(1, Succeeded, 1) // the broker took it after all
	l.Final(99, Succeeded, 1)
	c := l.Counts()
	if c.Lost != 0 || c.Unconfirmed != 2 || c.Unknown != 1 || c.Succeeded != 1 {
		t.Fatalf("counts = %+v", c)
	}
}

func TestRetriesCountFirstFinalOutcomeOnly(t *testing.T) {
	c := run(3, func(l *Ledger, seq int64) {
		l.Final(seq, Succeeded, int(seq)+1) // 0, 1, 2 retries
		l.Final(seq, Succeeded, 9)          // duplicates add no retries
	})
	if c.Retries != 3 || c.Duplicates != 3 {
		t.Fatalf("counts = %+v", c)
	}
}

func TestConcurrentRandomFates(t *testing.T) {
	const n = 200_000
	l := New()
	fate := make([]uint8, n) // 0 lost, 1 once, 2 twice
	r := rand.New(rand.NewPCG(1, 2))
	var wantLost, wantDup int64
	for i := range fate {
		fate[i] = uint8(r.IntN(100))
		switch {
		case fate[i] < 2:
			fate[i] = 0
			wantLost++
		case fate[i] < 5:
			fate[i] = 2
			wantDup++
		default:
			fate[i] = 1
		}
	}
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for seq := int64(w); seq < n; seq += workers {
				l.Published(seq)
				l.Confirmed(seq, true)
				for range fate[seq] {
					l.Final(seq, Succeeded, 1)
				}
			}
		})
	}
	wg.Wait()
	c := l.Counts()
	if c.Lost != wantLost || c.Duplicates != wantDup || l.Pending() != wantLost {
		t.Fatalf("lost %d dup %d pending %d, want lost %d dup %d", c.Lost, c.Duplicates, l.Pending(), wantLost, wantDup)
	}
}

// BenchmarkLedger1M reports the ledger's memory per job at 1,000,000 jobs.
func BenchmarkLedger1M(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := New()
		for seq := int64(0); seq < n; seq++ {
			l.Published(seq)
			l.Confirmed(seq, true)
			l.Final(seq, Succeeded, 1)
		}
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "bytes/job")
		b.ReportMetric(float64(l.Bytes())/n, "state-bytes/job")
		if l.Counts().Final != n {
			b.Fatal("ledger lost a job")
		}
	}
}

func TestCountRange(t *testing.T) {
	l := New()
	for seq := int64(0); seq < 10; seq++ {
		l.Published(seq)
		l.Confirmed(seq, seq != 3)
	}
	l.Final(5, Succeeded, 1)
	l.Final(6, Succeeded, 1)
	l.Final(12, Succeeded, 1) // never published: not in the range's figures
	r := l.CountRange(2, 8)
	want := Range{From: 2, To: 8, Published: 6, Confirmed: 5, Unconfirmed: 1, Final: 2, Lost: 3}
	if r != want {
		t.Fatalf("CountRange(2, 8) = %+v, want %+v", r, want)
	}
	if r := l.CountRange(1<<20, 1<<20+5); r.Published != 0 {
		t.Fatalf("an untouched range counted %+v", r)
	}
}
