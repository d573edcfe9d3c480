package runner

import (
	"fmt"
	"io"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// judgeSLO gives the variant its verdict against the scenario's SLO; a miss
// is not a failed gate.
func judgeSLO(sc *scenarios.Scenario, rv *report.Variant) {
	if sc.SLO == nil {
		return
	}
	rv.SLO = sc.SLO.Judge(rv, sc.Workers.Processes, sc.Workers.Concurrency)
}

// printVerdict writes a variant's verdict under its summary line. A
// harness-bound variant's caveat is left to its warning: one line per cause.
func printVerdict(w io.Writer, rv *report.Variant) {
	v := rv.SLO
	if v == nil {
		return
	}
	word := "meets"
	if !v.Met {
		word = "MISSES"
	}
	fmt.Fprintf(w, "  slo %s:", word)
	for i, c := range v.Checks {
		sep := ";"
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(w, "%s %s", sep, c.Text)
	}
	fmt.Fprintln(w)
	if v.Caveat != "" && !rv.HarnessBound {
		fmt.Fprintf(w, "  slo caveat: %s\n", v.Caveat)
	}
}

// PrintCapacity writes the answer to the SLO: the cells that meet it,
// cheapest first, the recommendation, and why each other cell misses.
func PrintCapacity(w io.Writer, c *report.Capacity) {
	if c == nil || w == nil {
		return
	}
	fmt.Fprintf(w, "\nSLO %s\n", c.SLO.Describe())
	if c.Recommended == "" {
		fmt.Fprintln(w, "no variant meets the SLO")
		if c.Note != "" {
			fmt.Fprintf(w, "note: %s\n", c.Note)
		}
	} else {
		fmt.Fprintf(w, "recommendation: %s\n", c.Recommended)
	}
	for i, m := range c.Meeting {
		fmt.Fprintf(w, "  %d. %s: %s\n", i+1, m.Variant, report.DescribeCost(m, c.SLO.Rate))
	}
	for _, m := range c.Missing {
		fmt.Fprintf(w, "  misses %s: %s\n", m.Variant, m.Reason)
		if m.Caveat != "" {
			fmt.Fprintf(w, "    caveat: %s\n", m.Caveat)
		}
	}
}
