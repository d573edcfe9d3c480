package scenarios

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/gate"
)

// Search asks, per variant, for the highest steady rate that meets the SLO
// (internal/maxrate): step up from From, then bisect, each step a run of
// Settle + Measure at one rate. Zero To: no search.
type Search struct {
	Rate      RateRange
	Settle    time.Duration // default 5s: latency of the first seconds of a step is not judged
	Measure   time.Duration // default 10s: the judged part of a step
	Precision float64       // default 0.1: bisect until the bracket is this narrow, relative
	MaxSteps  int           // default 12: steps per variant at most
}

// RateRange is the rates a search explores.
type RateRange struct {
	From, To float64 // jobs/s
}

// Enabled says whether the scenario asks for a search.
func (s Search) Enabled() bool { return s.Rate.To > 0 }

// Search defaults.
const (
	defaultSettle    = 5 * time.Second
	defaultMeasure   = 10 * time.Second
	defaultPrecision = 0.1
	defaultMaxSteps  = 12
)

// DefaultSearchRange is what bench run --max-rate explores when the scenario
// has no search key.
var DefaultSearchRange = RateRange{From: 100, To: 20000}

var searchFields = []field[Search]{
	objKey(meta{Name: "rate", Required: true, Doc: "the rates to explore"}, func(s *Search) *RateRange { return &s.Rate }, []field[RateRange]{
		rateKey(meta{Name: "from", Required: true, Doc: "the first step's rate"}, true, func(r *RateRange) *float64 { return &r.From }),
		rateKey(meta{Name: "to", Required: true, Doc: "the highest rate tried"}, true, func(r *RateRange) *float64 { return &r.To }),
	}, checkRateRange),
	durKey(meta{Name: "settle", Doc: "the start of each step whose latency is not judged"}, false, func(s *Search) *time.Duration { return &s.Settle }),
	durKey(meta{Name: "measure", Doc: "the judged part of each step"}, true, func(s *Search) *time.Duration { return &s.Measure }),
	numKey(meta{Name: "precision", Doc: "bisect until the highest meeting and lowest missing rate are this close, relative"}, 0.01, 1, false,
		func(s *Search) *float64 { return &s.Precision }),
	intKey(meta{Name: "max_steps", Doc: "steps per variant at most"}, 2, 100, func(s *Search) *int { return &s.MaxSteps }),
}

func checkRateRange(d *decoder, o *obj, r *RateRange) {
	if r.From > 0 && r.To > 0 && r.From >= r.To {
		d.errf(o.vals["to"], join(o.path, "to"), "must be above from (%g/s)", r.From)
	}
}

// decodeSLO reads slo: {rate: 1500/s, METRIC: TARGET, ...}. Each objective
// names a metric of the metric table (as gates do); its direction is the
// metric's: a lower-is-better one must be at most its target.
func decodeSLO(d *decoder, n *yaml.Node, path string, s *Scenario) {
	o := d.object(n, path)
	if o == nil {
		return
	}
	slo, bad := &report.SLO{}, false
	for i := 0; i+1 < len(o.n.Content); i += 2 {
		k, v := deref(o.n.Content[i]), deref(o.n.Content[i+1])
		if k == nil || o.keys[k.Value] != k {
			continue
		}
		kpath := join(path, k.Value)
		if k.Value == "rate" {
			r, ok := d.rate(v, kpath)
			switch {
			case ok && r > 0:
				slo.Rate = r
			case ok:
				d.errf(v, kpath, "must be above zero")
				bad = true
			default:
				bad = true
			}
			continue
		}
		name, kind, err := report.ObjectiveKind(k.Value)
		if err != nil {
			msg := err.Error()
			if c := closest(k.Value, report.ObjectiveMetrics()); c != "" {
				msg = "did you mean " + c + "? " + msg
			}
			d.errf(k, path, "%s", msg)
			bad = true
			continue
		}
		target, ok := d.objectiveTarget(v, kpath, name, kind)
		bad = bad || !ok
		if ok {
			slo.Objectives = append(slo.Objectives, report.Objective{Metric: name, Target: target, Source: v.Value})
		}
	}
	if slo.Rate == 0 && len(slo.Objectives) == 0 && !bad {
		d.errf(n, path, "names no objective; want rate and metrics such as p99(end_to_end): 250ms")
		return
	}
	s.SLO, s.sloPos = slo, d.pos(n)
}

// objectiveTarget reads a target in the metric's unit, as a gate's threshold
// is read.
func (d *decoder) objectiveTarget(v *yaml.Node, path, metric string, kind gate.Kind) (float64, bool) {
	if _, ok := d.scalar(v, path, "a target such as 250ms"); !ok {
		return 0, false
	}
	e, err := gate.Parse(metric+" <= "+v.Value, report.Catalog)
	if err != nil {
		msg := err.Error()
		if se, ok := err.(*gate.SyntaxError); ok {
			msg = se.Msg
		}
		d.errf(v, path, "%s", msg)
		return 0, false
	}
	if e.Value < 0 {
		d.errf(v, path, "must not be negative")
		return 0, false
	}
	return e.Value, true
}

func sloSchema() map[string]any {
	props := map[string]any{"rate": rateSchema}
	for _, m := range report.ObjectiveMetrics() {
		props[m] = map[string]any{"type": []string{"string", "number"}}
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}

// checkSLO: the SLO's rate must be one the load offers, unless a search
// drives the rate.
func checkSLO(s *Scenario) *Error {
	if s.SLO == nil || s.SLO.Rate == 0 || s.Search.Enabled() {
		return nil
	}
	var peak float64
	for _, p := range s.Load {
		peak = max(peak, p.Rate, p.From, p.To)
	}
	if peak > 0 && s.SLO.Rate > peak*(1+report.RateTolerance) {
		return &Error{Pos: s.sloPos, Msg: "slo.rate " + report.FormatMetric("complete_per_s", s.SLO.Rate) +
			" is above the load's highest rate " + report.FormatMetric("complete_per_s", peak) + ": no variant could meet it (a search: key explores rates)"}
	}
	return nil
}
