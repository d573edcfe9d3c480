package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/benchmq/bench/report/stats"
)

// Print writes c for people: a table of every compared metric (medians, the
// change with its 95 % interval, the rank test's p, the runs on each side,
// the limit and the verdict), the checks that failed, the warnings, and a
// last line that is "REGRESSION" or "no regression" with the tally.
func (c *Comparison) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "variant\tmetric\tbaseline\tnew\tchange [95% interval]\tp\truns\tlimit\tverdict")
	for _, v := range c.Variants {
		for _, m := range v.Metrics {
			old, cur := FormatMetric(m.Metric, m.Old), FormatMetric(m.Metric, m.New)
			if m.Verdict == VerdictNotCompared && m.Note == notMeasured {
				old, cur = "–", "–"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%.0f%%\t%s\n", v.Name, m.Metric,
				old, cur, formatChangeCI(m), formatP(m), m.N, m.M, m.Threshold*100, formatVerdict(m))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print comparison: %w", err)
	}
	var lines []string
	failed := 0
	for _, ch := range c.Checks {
		if ch.Failed {
			failed++
			lines = append(lines, "FAILED: "+checkText(ch))
		}
	}
	if failed == 0 && len(c.Checks) > 0 {
		lines = append(lines, "checks: the run passed its gates and was not interrupted; "+
			strings.Join(invariants, ", ")+" are within the baseline's in every variant")
	}
	if f := c.machineFactor(); f > 0 {
		lines = append(lines, fmt.Sprintf("machine: this broker+machine's calibrated capacity is %.2f× the baseline's", f))
	}
	for _, s := range c.Warnings {
		lines = append(lines, "warning: "+s)
	}
	for _, n := range c.OnlyInBase {
		lines = append(lines, fmt.Sprintf("variant %s: only in the baseline, not compared", n))
	}
	for _, n := range c.OnlyInNew {
		lines = append(lines, fmt.Sprintf("variant %s: not in the baseline, not compared", n))
	}
	lines = append(lines, c.summary())
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return fmt.Errorf("print comparison: %w", err)
		}
	}
	return nil
}

// summary is the last line: the verdict and the tally of gated metrics.
func (c *Comparison) summary() string {
	counts := map[Verdict]int{}
	var regressed []string
	for _, v := range c.Variants {
		for _, m := range v.Metrics {
			if !m.Gated {
				continue
			}
			counts[m.Verdict]++
			if m.Failed() {
				regressed = append(regressed, v.Name+" "+m.Metric)
			}
		}
	}
	var tally []string
	for _, v := range []Verdict{VerdictRegressed, VerdictImproved, VerdictNoChange, VerdictInconclusive, VerdictNotCompared} {
		if counts[v] > 0 {
			tally = append(tally, fmt.Sprintf("%d %s", counts[v], v))
		}
	}
	head := "no regression"
	if c.Regressed() {
		head = "REGRESSION"
		if len(regressed) > 0 {
			head += " in " + strings.Join(regressed, ", ")
		}
	}
	return fmt.Sprintf("%s (gated metrics: %s; α = %g)", head, strings.Join(tally, ", "), c.Alpha)
}

// machineFactor is the median of the variants' machine factors; 0 when none.
func (c *Comparison) machineFactor() float64 {
	var fs []float64
	for _, v := range c.Variants {
		if v.MachineFactor > 0 {
			fs = append(fs, v.MachineFactor)
		}
	}
	if len(fs) == 0 {
		return 0
	}
	return stats.Median(fs)
}

func checkText(ch Check) string {
	where := "the new run"
	if ch.Variant != "" {
		where = "variant " + ch.Variant
	}
	switch ch.What {
	case "passed":
		return where + " did not pass its own gates"
	case "interrupted":
		return where + " was interrupted: its figures are partial"
	case "error":
		return where + " failed: " + ch.New
	}
	return fmt.Sprintf("%s: %s %s, the baseline at most %s", where, ch.What, ch.New, ch.Base)
}

func formatChangeCI(m MetricDelta) string {
	if m.Verdict == VerdictNotCompared {
		return "–"
	}
	s := FormatChange(m.Change)
	if !math.IsNaN(m.ChangeLow) && !math.IsNaN(m.ChangeHigh) {
		s += " [" + FormatChange(m.ChangeLow) + " … " + FormatChange(m.ChangeHigh) + "]"
	}
	return s
}

func formatP(m MetricDelta) string {
	if m.Verdict == VerdictNotCompared {
		return "–"
	}
	return fmt.Sprintf("%.3f", m.P)
}

func formatVerdict(m MetricDelta) string {
	s := string(m.Verdict)
	var notes []string
	if m.Note != "" && m.Verdict != VerdictRegressed && m.Verdict != VerdictImproved {
		notes = append(notes, m.Note) // for these the note is the p column's value
	}
	if m.Normalised {
		notes = append(notes, "normalised by the machine factor")
	}
	if !m.Gated && m.Verdict != VerdictNotCompared {
		notes = append(notes, "reported, not gated")
	}
	if m.Failed() {
		s = strings.ToUpper(s)
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, "; ") + ")"
	}
	return s
}
