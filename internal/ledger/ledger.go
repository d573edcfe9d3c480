// Package ledger records the fate of every job of a run, exactly and compactly:
// one byte of state per job, so a 1,000,000-job run needs about 1 MB.
//
// A job is lost when it was confirmed by the broker and never reached a final
// outcome (succeeded, recovered or dead-lettered). A duplicate is a second final
// outcome of one job. Recovery and dead-lettering are two records of the same
// final outcome (the runtime runs the recovery function, then dead-letters), so a
// job that is both recovered and dead-lettered once is not a duplicate.
package ledger

import (
	"fmt"
	"sync"
)

// Outcome is the final outcome of a job as reported by a worker or the runner.
type Outcome uint8

// The final outcomes.
const (
	Succeeded Outcome = iota + 1
	Recovered
	DeadLettered
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case Recovered:
		return "recovered"
	case DeadLettered:
		return "dead_lettered"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// State bits of one job.
const (
	bitPublished uint8 = 1 << iota
	bitConfirmed
	bitNacked
	bitSucceeded
	bitRecovered
	bitDead
	bitFinalDup // a second final outcome was seen (counted once in Duplicates per occurrence)
)

const chunkBits = 16 // 65,536 jobs per chunk: memory grows with the run, not with a guess

// Counts is a snapshot of the ledger.
type Counts struct {
	Published     int64
	Confirmed     int64
	Unconfirmed   int64 // published, never acked by the broker (nacked or lost with the connection)
	Succeeded     int64
	Recovered     int64
	DeadLettered  int64
	Final         int64 // jobs with at least one final outcome
	Lost          int64 // confirmed jobs with no final outcome (so far, until the drain ends)
	Duplicates    int64
	Redelivered   int64
	Retries       int64
	TIDMismatches int64
	Emitted       int64
	Unknown       int64 // outcomes for sequence numbers this run never published
}

// Ledger is safe for concurrent use.
type Ledger struct {
	mu     sync.Mutex
	chunks [][]uint8
	c      Counts
	opts   Options
}

// Options change what the outcomes mean.
type Options struct {
	// DeadIsRecovery counts a dead-lettered job as recovered too, once, with
	// or without a Recovered record: a worker seen from the outside
	// (black-box) parks a final failure in a dead queue, or announces it, or
	// both, and either means its attempts ran out.
	DeadIsRecovery bool
}

// New returns an empty ledger.
func New() *Ledger { return &Ledger{} }

// NewWith returns an empty ledger with options.
func NewWith(o Options) *Ledger { return &Ledger{opts: o} }

// state returns the state byte of seq, growing the ledger when grow is set.
// It returns nil for a seq outside the ledger when grow is false.
func (l *Ledger) state(seq int64, grow bool) *uint8 {
	if seq < 0 {
		return nil
	}
	ci := int(seq >> chunkBits)
	if ci >= len(l.chunks) {
		if !grow {
			return nil
		}
		for len(l.chunks) <= ci {
			l.chunks = append(l.chunks, nil)
		}
	}
	if l.chunks[ci] == nil {
		if !grow {
			return nil
		}
		l.chunks[ci] = make([]uint8, 1<<chunkBits)
	}
	return &l.chunks[ci][seq&(1<<chunkBits-1)]
}

// Published records that seq was handed to the broker.
func (l *Ledger) Published(seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(seq, true)
	if *s&bitPublished == 0 {
		*s |= bitPublished
		l.c.Published++
	}
}

// Confirmed records the broker's answer to seq's publish: ack, or not (a nack, or
// the connection died before the confirm arrived).
func (l *Ledger) Confirmed(seq int64, ack bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(seq, true)
	if *s&(bitConfirmed|bitNacked) != 0 {
		return
	}
	if ack {
		*s |= bitConfirmed
		l.c.Confirmed++
	} else {
		*s |= bitNacked
		l.c.Unconfirmed++
	}
}

// Final records a final outcome of seq; attempts is the attempt number that
// ended it (1 = no retry). It reports whether this was the job's first final
// outcome.
func (l *Ledger) Final(seq int64, o Outcome, attempts int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(seq, false)
	if s == nil || *s&bitPublished == 0 {
		l.c.Unknown++
		return false
	}
	first := *s&(bitSucceeded|bitRecovered|bitDead) == 0
	dup := false
	switch o {
	// A job counts once as succeeded or recovered, by its first final
	// outcome: a later record is a duplicate, never a second success.
	case Succeeded:
		dup = !first
		if first {
			l.c.Succeeded++
		}
		*s |= bitSucceeded
	case Recovered:
		// After a dead-lettering alone this is the same outcome's second record.
		dup = *s&(bitSucceeded|bitRecovered) != 0
		if !dup && (!l.opts.DeadIsRecovery || *s&bitDead == 0) {
			l.c.Recovered++
		}
		*s |= bitRecovered
	case DeadLettered:
		// dead_lettered counts the distinct jobs that reached .dead, whatever came first.
		dup = *s&(bitSucceeded|bitDead) != 0
		if *s&bitDead == 0 {
			l.c.DeadLettered++
			if !dup && l.opts.DeadIsRecovery && *s&bitRecovered == 0 {
				l.c.Recovered++
			}
		}
		*s |= bitDead
	default:
		return false
	}
	if dup {
		l.c.Duplicates++
		*s |= bitFinalDup
	}
	if first {
		l.c.Final++
		if attempts > 1 {
			l.c.Retries += int64(attempts - 1)
		}
	}
	return first
}

// Redelivered counts one delivery the broker flagged as redelivered.
func (l *Ledger) Redelivered() {
	l.mu.Lock()
	l.c.Redelivered++
	l.mu.Unlock()
}

// Emitted records an event emitted by a job; tidOK says whether it carried the
// job's TID.
func (l *Ledger) Emitted(tidOK bool) {
	l.mu.Lock()
	l.c.Emitted++
	if !tidOK {
		l.c.TIDMismatches++
	}
	l.mu.Unlock()
}

// Pending is the number of confirmed jobs without a final outcome yet.
func (l *Ledger) Pending() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pendingLocked()
}

func (l *Ledger) pendingLocked() int64 {
	// Final counts jobs with any final outcome, including unconfirmed ones the
	// broker took after all; those must not offset confirmed jobs.
	var n int64
	for _, ch := range l.chunks {
		for _, s := range ch {
			if s&bitConfirmed != 0 && s&(bitSucceeded|bitRecovered|bitDead) == 0 {
				n++
			}
		}
	}
	return n
}

// Outstanding is a cheap upper-bound view for progress lines: confirmed minus
// jobs with a final outcome.
func (l *Ledger) Outstanding() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c.Confirmed - l.c.Final
}

// Counts returns a snapshot; Lost is computed exactly by a scan.
func (l *Ledger) Counts() Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.c
	c.Lost = l.pendingLocked()
	return c
}

// Running returns the counters without Lost, which needs a scan: cheap
// enough to sample several times a second.
func (l *Ledger) Running() Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

// LostSeqs returns up to max sequence numbers of lost jobs, for diagnostics.
func (l *Ledger) LostSeqs(max int) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int64
	for ci, ch := range l.chunks {
		for i, s := range ch {
			if s&bitConfirmed != 0 && s&(bitSucceeded|bitRecovered|bitDead) == 0 {
				out = append(out, int64(ci)<<chunkBits|int64(i))
				if len(out) >= max {
					return out
				}
			}
		}
	}
	return out
}

// Bytes is the memory the ledger's job states take.
func (l *Ledger) Bytes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ch := range l.chunks {
		n += len(ch)
	}
	return n
}
