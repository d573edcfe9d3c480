package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/benchmq/bench/report"
)

// progress prints the live state of a variant: one rewritten line on a
// terminal, a plain line every 5 s otherwise (CI logs).
func (r *Runner) progress(ctx context.Context, v *variantRun, start time.Time) {
	w := r.opts.Progress
	if w == nil {
		return
	}
	every := 5 * time.Second
	if r.opts.TTY {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	total := v.sc.TotalJobs()
	for {
		select {
		case <-ctx.Done():
			if r.opts.TTY {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case <-t.C:
		}
		gs := v.gen.Stats()
		c := v.ledger.Counts()
		line := fmt.Sprintf("[%s] %5.1fs published %d/%d confirmed %d completed %d ready %.0f unacked %.0f rss %s",
			v.v.Name, time.Since(start).Seconds(), gs.Published, total, gs.Confirmed, c.Final,
			v.samples.last(report.SeriesQueueReady), v.samples.last(report.SeriesQueueUnacked), bytesIEC(int64(v.samples.last(report.SeriesWorkerRSS))))
		if c.Lost > 0 && gs.Done {
			line += fmt.Sprintf(" outstanding %d", c.Lost)
		}
		if r.opts.TTY {
			fmt.Fprint(w, "\r\033[K"+line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

func (r *Runner) printSummary(i, n int, v *report.Variant) {
	w := r.opts.Progress
	if w == nil {
		return
	}
	verdict := "PASS"
	if !v.Passed {
		verdict = "FAIL"
	}
	l := v.Ledger
	fmt.Fprintf(w, "variant %d/%d %s: %s published %d confirmed %d succeeded %d recovered %d lost %d duplicates %d retries %d redelivered %d | e2e p50 %.1fms p99 %.1fms | peak rss %s | drain %.1fs\n",
		i+1, n, v.Name, verdict, l.Published, l.Confirmed, l.Succeeded, l.Recovered, l.Lost, l.Duplicates, l.Retries, l.Redelivered,
		v.LatencyMS.EndToEnd.P50, v.LatencyMS.EndToEnd.P99, bytesIEC(v.Peak.WorkerRSSBytes), v.DrainSeconds)
	for _, g := range v.Gates {
		mark := "ok  "
		if !g.Passed {
			mark = "FAIL"
		}
		value := g.Display
		if value == "" {
			value = fmt.Sprintf("%g", g.Value)
		}
		fmt.Fprintf(w, "  %s %s (value %s)%s\n", mark, g.Expr, value, suffix(g.Error))
	}
	for _, warn := range v.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if v.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", v.Error)
	}
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
