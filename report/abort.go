package report

import (
	"fmt"
	"strings"

	"github.com/benchmq/bench/report/gate"
)

// AbortMinSamples is how many end-to-end latency samples a percentile or
// mean so far needs before an abort gate may judge it: fewer say little
// about the run.
const AbortMinSamples = 100

// CheckAbort says whether e can be an abort gate: checked during the run, it
// must name a metric the run can watch, with an operator whose failure the
// rest of the run cannot undo (for a metric that only grows) or that judges
// the value so far (for a percentile).
func CheckAbort(e *gate.Expr) error {
	m, ok := LookupMetric(e.Metric)
	if !ok {
		return fmt.Errorf("unknown metric %s", e.Metric)
	}
	switch m.Live {
	case AtEnd:
		return fmt.Errorf("abort: %s is known only when the variant ends, so it cannot stop a run early; "+
			"drop abort: true to check it at the end, or abort on a metric the run watches: %s",
			m.Name, strings.Join(LiveMetricNames(), ", "))
	case Grows:
		switch e.Op {
		case "<", "<=", "==":
			return nil
		}
		return fmt.Errorf("abort: %s only grows during a run, so %q can only be judged at the end; "+
			"an abort gate on it needs <, <= or ==", m.Name, e.Source)
	default:
		switch e.Op {
		case "<", "<=", ">", ">=":
			return nil
		}
		return fmt.Errorf("abort: %s is a value so far that moves either way; an abort gate on it needs <, <=, > or >=", m.Name)
	}
}

// AbortFails evaluates an abort gate (one CheckAbort accepts) on a variant's
// values so far. It fails only when the run's end cannot make it pass (a
// growing metric already beyond its limit) or, for a value so far, once it
// rests on AbortMinSamples samples.
func AbortFails(e *gate.Expr, v *Variant) (failed bool, value float64) {
	m, ok := LookupMetric(e.Metric)
	if !ok || m.Live == AtEnd {
		return false, 0
	}
	if m.Live == SoFar && (m.Samples == nil || m.Samples(v) < AbortMinSamples) {
		return false, 0
	}
	passed, value, err := e.Eval(Lookup(v))
	if err != nil || passed {
		return false, value
	}
	if m.Live == Grows && e.Op == "==" && value < e.Value {
		return false, value // still below: it may reach the value
	}
	return true, value
}

// LiveMetricNames lists the metrics known while a variant runs.
func LiveMetricNames() []string {
	var out []string
	for _, m := range metrics {
		if m.Live != AtEnd {
			out = append(out, m.Name)
		}
	}
	return out
}
