package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/live"
)

// How often the live state is rebuilt: every second for CI logs, abort gates
// and --metrics-addr; four times a second on a terminal.
const (
	liveEvery    = time.Second
	liveEveryTTY = 250 * time.Millisecond
)

// errAborted is the cause of a load stopped by an abort gate.
var errAborted = errors.New("aborted by a gate")

// watchLive runs beside the load until teardown: each tick it rebuilds the
// variant's live snapshot, checks the abort gates on it, hands it to
// Options.OnSnapshot and prints the progress line (rewritten on a terminal,
// one line per tick otherwise).
func (v *variantRun) watchLive(ctx context.Context, start time.Time) {
	w, tty := v.r.opts.Progress, v.r.opts.TTY
	every := liveEvery
	if tty && w != nil {
		every = liveEveryTTY
	}
	t := time.NewTicker(every)
	defer t.Stop()
	rates := rateWindow{at: start}
	for {
		select {
		case <-ctx.Done():
			if tty && w != nil {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case now := <-t.C:
			snap := v.snapshot(now, start)
			v.checkAborts(&snap)
			if v.r.opts.OnSnapshot != nil {
				v.r.opts.OnSnapshot(snap)
			}
			if w == nil {
				continue
			}
			line := v.progressLine(&snap, rates.update(now, snap.Result.Ledger.Published, v.coll.completed.Load()))
			if tty {
				fmt.Fprint(w, "\r\033[K"+line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}

// snapshot is the variant's figures so far: the live metrics of the table
// (report.Metric.Live) and the latest sample of each series.
func (v *variantRun) snapshot(now, start time.Time) live.Snapshot {
	c := v.ledger.Counts()
	rv := report.Variant{Name: v.v.Name, Params: v.v.Params}
	// Lost and unconfirmed are known only at the end: left at zero.
	rv.Ledger = report.Ledger{Published: c.Published, Confirmed: c.Confirmed,
		Succeeded: c.Succeeded, Recovered: c.Recovered, DeadLettered: c.DeadLettered, Finished: c.Final,
		Duplicates: c.Duplicates, Redelivered: c.Redelivered, Retries: c.Retries,
		TIDMismatches: c.TIDMismatches, Emitted: c.Emitted, Unobserved: v.unobserved()}
	rv.LatencyMS.EndToEnd = v.coll.liveEndToEnd()
	rv.Peak = v.peaks()
	rv.Breaker = v.breaker()
	rv.LateSends = v.genStats().LateSends
	return live.Snapshot{Scenario: v.r.sc.Name, Variant: v.v.Name, ElapsedS: now.Sub(start).Seconds(),
		Result: rv, Series: v.samples.latest()}
}

// checkAborts ends the variant's load when an abort gate failed for good.
func (v *variantRun) checkAborts(snap *live.Snapshot) {
	if v.aborted.Load() != nil {
		return
	}
	for _, g := range v.v.Scenario.Gates {
		if !g.Abort {
			continue
		}
		if applies, _ := v.v.Scenario.GateApplies(g, v.v.Params); !applies {
			continue
		}
		failed, value := report.AbortFails(g.Expr, &snap.Result)
		if !failed {
			continue
		}
		a := &report.Abort{Gate: g.Source, Value: value, Display: g.Expr.FormatValue(value), AtS: snap.ElapsedS}
		a.Reason = fmt.Sprintf("abort gate %q failed %.1f s after the load started, with %s so far: the load was stopped and the drain skipped",
			g.Source, a.AtS, a.Display)
		if v.aborted.CompareAndSwap(nil, a) {
			v.log.Warn("variant aborted", "gate", g.Source, "value", a.Display)
			v.stopLoad(errAborted)
		}
		return
	}
}

// rateWindow turns counters into rates over about a second: every tick in CI
// logs, every fourth on a terminal.
type rateWindow struct {
	at              time.Time
	pub, done       int64
	pubRate, doneRt float64
}

// rateSpan is the shortest span a rate is computed over; below a second, so
// that a tick that comes a little early still updates the rates.
const rateSpan = 750 * time.Millisecond

func (r *rateWindow) update(now time.Time, pub, done int64) *rateWindow {
	if dt := now.Sub(r.at).Seconds(); dt >= rateSpan.Seconds() {
		r.pubRate, r.doneRt = float64(pub-r.pub)/dt, float64(done-r.done)/dt
		r.at, r.pub, r.done = now, pub, done
	}
	return r
}

// progressLine is one line of the variant's state: rates, latency so far,
// queue depth and worker memory.
func (v *variantRun) progressLine(s *live.Snapshot, r *rateWindow) string {
	l := s.Result.Ledger
	p99 := "-"
	if e := s.Result.LatencyMS.EndToEnd; e.Count > 0 {
		p99 = report.FormatMetric("p99(end_to_end)", e.P99/1e3)
	}
	line := fmt.Sprintf("[%s] %5.1fs published %d/%d (%.0f/s) completed %d (%.0f/s) p99 %s ready %.0f unacked %.0f rss %s",
		v.v.Name, s.ElapsedS, l.Published, v.sc.TotalJobs(), r.pubRate, v.coll.completed.Load(), r.doneRt, p99,
		s.Series[report.SeriesQueueReady], s.Series[report.SeriesQueueUnacked], bytesIEC(int64(s.Series[report.SeriesWorkerRSS])))
	if gs := v.genStats(); gs.Done {
		if out := v.ledger.Outstanding(); out > 0 {
			line += fmt.Sprintf(" outstanding %d", out)
		}
	}
	return line
}
