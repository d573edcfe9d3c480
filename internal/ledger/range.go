package ledger

// Range is what the ledger knows of the jobs with sequence numbers in
// [From, To): e.g. the shard of a generator on another host.
type Range struct {
	From, To    int64
	Published   int64
	Confirmed   int64
	Unconfirmed int64
	Final       int64 // jobs with a final outcome
	Lost        int64 // confirmed, without a final outcome
}

// CountRange scans the jobs in [from, to).
func (l *Ledger) CountRange(from, to int64) Range {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Range{From: from, To: to}
	for seq := max(from, 0); seq < to; seq++ {
		s := l.state(seq, false)
		if s == nil {
			// The rest of this chunk was never touched.
			seq |= 1<<chunkBits - 1
			continue
		}
		final := *s&(bitSucceeded|bitRecovered|bitDead) != 0
		if *s&bitPublished != 0 {
			r.Published++
		}
		switch {
		case *s&bitConfirmed != 0:
			r.Confirmed++
			if !final {
				r.Lost++
			}
		case *s&bitNacked != 0:
			r.Unconfirmed++
		}
		if final {
			r.Final++
		}
	}
	return r
}
