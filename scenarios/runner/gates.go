package runner

import (
	"fmt"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// evalGates evaluates the scenario's gates against the variant. A gate that
// cannot be judged is recorded as skipped with the reason, never as passed:
// a --set pinned a key of its when to another value, or an abort ended the
// variant before the gate's metric was known.
func evalGates(sc *scenarios.Scenario, rv *report.Variant) {
	lookup := report.Lookup(rv)
	rv.Passed = rv.Error == "" && rv.Aborted == nil
	for _, g := range sc.Gates {
		applies, skip := sc.GateApplies(g, rv.Params)
		if !applies && skip == "" {
			continue // another variant's gate
		}
		rg := report.Gate{Expr: g.Source, Abort: g.Abort}
		if m, ok := report.LookupMetric(g.Expr.Metric); ok && skip == "" && rv.Aborted != nil && m.Live == report.AtEnd {
			skip = fmt.Sprintf("the variant was aborted at %.1f s, before %s was known", rv.Aborted.AtS, m.Name)
		}
		if skip != "" {
			rg.Skipped, rg.Reason = true, skip
			rv.Gates = append(rv.Gates, rg)
			continue
		}
		passed, value, err := g.Expr.Eval(lookup)
		rg.Passed, rg.Value, rg.Display = passed && err == nil, value, g.Expr.FormatValue(value)
		if err != nil {
			rg.Error = err.Error()
		}
		rv.Passed = rv.Passed && rg.Passed
		rv.Gates = append(rv.Gates, rg)
	}
}
