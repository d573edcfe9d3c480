package runner

import (
	"fmt"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// evalGates evaluates the scenario's gates against the variant.
func evalGates(sc *scenarios.Scenario, rv *report.Variant) {
	lookup := report.Lookup(rv)
	rv.Passed = rv.Error == ""
	for _, g := range sc.Gates {
		if !g.Applies(rv.Params) {
			for k := range g.When {
				if _, ok := rv.Params[k]; !ok {
					rv.Warnings = append(rv.Warnings, fmt.Sprintf("gate %q not evaluated: %s is not a matrix key of this run", g.Source, k))
				}
			}
			continue
		}
		passed, value, err := g.Expr.Eval(lookup)
		rg := report.Gate{Expr: g.Source, Passed: passed && err == nil, Value: value, Display: g.Expr.FormatValue(value)}
		if err != nil {
			rg.Error = err.Error()
		}
		rv.Passed = rv.Passed && rg.Passed
		rv.Gates = append(rv.Gates, rg)
	}
}
