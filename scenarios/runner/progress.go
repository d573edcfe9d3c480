package runner

import (
	"fmt"

	"github.com/benchmq/bench/report"
)

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
	fmt.Fprintf(w, "variant %d/%d %s: %s published %d confirmed %d succeeded %d recovered %d lost %d duplicates %d retries %s redelivered %s | e2e p50 %.1fms p99 %.1fms | peak rss %s | drain %.1fs\n",
		i+1, n, v.Name, verdict, l.Published, l.Confirmed, l.Succeeded, l.Recovered, l.Lost, l.Duplicates,
		count(l, "retries", l.Retries), count(l, "redelivered", l.Redelivered),
		v.LatencyMS.EndToEnd.P50, v.LatencyMS.EndToEnd.P99, bytesIEC(v.Peak.WorkerRSSBytes), v.DrainSeconds)
	if a := v.Aborted; a != nil {
		fmt.Fprintf(w, "  ABORTED: %s\n", a.Reason)
	}
	for _, g := range v.Gates {
		if g.Skipped {
			fmt.Fprintf(w, "  skip %s: %s\n", g.Expr, g.Reason)
			continue
		}
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
	printVerdict(w, v)
	printSearch(w, v.Search)
	for _, warn := range v.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if v.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", v.Error)
	}
}

// count shows a ledger count, or n/a when the mode cannot see it.
func count(l report.Ledger, name string, n int64) string {
	if !l.Observed(name) {
		return "n/a"
	}
	return fmt.Sprint(n)
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
