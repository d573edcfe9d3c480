package scenarios

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/gate"
	"github.com/benchmq/bench/worker"
)

// decode builds a Scenario from the document's root mapping, recording every error.
func (d *decoder) decode(root *yaml.Node) *Scenario {
	s := &Scenario{}
	s.setDefaults()
	if o := decodeFields(d, root, "", scenarioFields, s, nil); o != nil {
		d.checkScenario(o, s)
	}
	return s
}

// checkScenario applies the rules between top-level keys, once every key is decoded.
func (d *decoder) checkScenario(top *obj, s *Scenario) {
	d.checkNames(top, s)
	if n := s.TotalJobs(); n > maxJobs {
		d.errf(top.keys["load"], "load", "publishes %d jobs in all, more than the limit of %d per variant", n, maxJobs)
	}
	// Faults scheduled after the run cannot happen; that is a mistake in the file.
	end := s.LoadDuration() + s.DrainTimeout
	specs := make([]fault.Spec, len(s.Faults))
	for i, f := range s.Faults {
		specs[i] = f.Spec
		if f.At >= end {
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: fmt.Sprintf("fault at %s starts after the run ends (load %s + drain_timeout %s)", f.At, s.LoadDuration(), s.DrainTimeout)})
		}
		switch {
		case f.Target != fault.TargetDependency:
		case f.Name != "" && !slices.Contains(s.DependencyNames(), f.Name):
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: fmt.Sprintf("no dependency named %s; dependencies: %s", f.Name, namesOrNone(s.DependencyNames()))})
		case f.Name == "" && s.OwnWorker():
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: fmt.Sprintf("a dependency fault of workers.command needs name: one of dependencies (%s)", namesOrNone(s.DependencyNames()))})
		case f.Name == "" && s.Job.DependencyCalls == 0:
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: "a dependency fault needs job.dependency_calls > 0 to have any effect"})
		}
	}
	d.checkOwnWorker(top, s)
	d.checkClusterFaults(s)
	d.checkBrokerNodes(top, s)
	d.checkPlacement(top, s)
	for _, o := range fault.Overlaps(specs) {
		d.errs = append(d.errs, &Error{Pos: s.Faults[o.B].Pos, Msg: o.Error()})
	}
	if s.Broker.URL != "" && !s.Broker.Managed {
		var es Errors
		if errors.As(s.CheckBroker(false), &es) {
			d.errs = append(d.errs, es...)
		}
	}
}

// checkBrokerNodes: a cluster is one bench starts; it cannot be an external URL.
func (d *decoder) checkBrokerNodes(top *obj, s *Scenario) {
	if s.Broker.Nodes <= 1 {
		return
	}
	at := top.n
	if b := top.vals["broker"]; b != nil {
		at = b
	}
	if !s.Broker.Managed || s.Broker.URL != "" {
		d.errf(at, "broker.nodes", "a cluster of %d nodes is started by bench: set broker.managed: true and no broker.url", s.Broker.Nodes)
	}
}

func namesOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// checkNames applies the runtime's name rules to task, event and app.
func (d *decoder) checkNames(top *obj, s *Scenario) {
	switch {
	case s.Task != "" && s.Event != "":
		d.errf(top.keys["event"], "", "task and event are exclusive: set exactly one")
	case !top.has("task") && !top.has("event"):
		d.errf(top.n, "", "missing task or event")
	}
	if s.Task != "" {
		app := s.App
		if !top.has("app") {
			app, _, _ = strings.Cut(s.Task, ".")
		}
		if err := worker.ValidateTask(app, s.Task); err != nil {
			d.errf(top.vals["task"], "task", "%v", err)
		} else {
			s.App = app
		}
	}
	if s.Event != "" && !top.has("app") {
		d.errf(top.vals["event"], "event", "needs app: the subscribing app names the queue <app>.<event>")
	}
}

func decodeSeed(d *decoder, n *yaml.Node, path string, s *Scenario) {
	if v, ok := d.integer(n, path, math.MinInt64, math.MaxInt64); ok {
		s.Seed, s.SeedSet = v, true
	}
}

// dist decodes `5ms` or {dist: exponential, mean: 5ms} or {dist: lognormal, p50: 5ms, p99: 50ms}.
func (d *decoder) dist(n *yaml.Node, path string) Dist {
	if n.Kind == yaml.ScalarNode {
		v, err := parseDuration(n.Value)
		if err != nil || n.Tag == "!!bool" {
			d.errf(n, path, "must be a duration or {dist: ...}: %v", err)
			return Dist{Kind: DistFixed}
		}
		return Dist{Kind: DistFixed, Fixed: v}
	}
	o := d.object(n, path, "dist", "value", "mean", "p50", "p99")
	if o == nil || !o.require("dist") {
		return Dist{Kind: DistFixed}
	}
	kind, ok := o.oneOf("dist", DistFixed, DistExponential, DistLognormal)
	if !ok {
		return Dist{Kind: DistFixed}
	}
	uses := map[string][]string{DistFixed: {"value"}, DistExponential: {"mean"}, DistLognormal: {"p50", "p99"}}[kind]
	for _, k := range []string{"value", "mean", "p50", "p99"} {
		if o.keys[k] != nil && !contains(uses, k) {
			d.errf(o.keys[k], path, "%s is not used by dist %s (it takes %s)", k, kind, strings.Join(uses, ", "))
		}
	}
	o.require(uses...)
	out := Dist{Kind: kind}
	switch kind {
	case DistFixed:
		out.Fixed, _ = o.dur("value", maxDuration)
	case DistExponential:
		out.Mean, _ = o.dur("mean", maxDuration)
	case DistLognormal:
		p50, ok50 := o.positiveDur("p50", maxDuration)
		p99, ok99 := o.positiveDur("p99", maxDuration)
		if ok50 && ok99 && p99 < p50 {
			d.errf(o.vals["p99"], path, "p99 %s is below p50 %s", p99, p50)
		}
		out.P50, out.P99 = p50, p99
	}
	return out
}

func (d *decoder) list(n *yaml.Node, path string, limit int) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		d.errf(n, path, "must be a list, got %s", describe(n))
		return nil
	}
	if len(n.Content) > limit {
		d.errf(n, path, "has %d items, more than the limit of %d", len(n.Content), limit)
		return nil
	}
	return n.Content
}

func decodeLoad(d *decoder, n *yaml.Node, path string, s *Scenario) {
	items := d.list(n, path, maxPhases)
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.errf(n, path, "needs at least one phase")
	}
	for i, item := range items {
		ipath := path + "." + strconv.Itoa(i)
		o := d.object(item, ipath, phaseKinds...)
		if o == nil {
			continue
		}
		if len(o.keys) != 1 {
			if len(o.keys) == 0 && len(o.n.Content) == 0 {
				d.errf(o.n, ipath, "needs one of %s", strings.Join(phaseKinds, ", "))
			} else if len(o.keys) > 1 {
				d.errf(o.n, ipath, "holds more than one phase; write each as its own list item")
			}
			continue
		}
		var kind string
		for k := range o.keys {
			kind = k
		}
		ph := Phase{Phase: loadgen.Phase{Kind: kind, Size: defaultPhaseSize}, Pos: d.pos(o.keys[kind])}
		kpath := join(ipath, kind)
		v := o.vals[kind]
		if v == nil {
			d.errf(o.keys[kind], kpath, "must be a mapping, got nothing")
			continue
		}
		if decodeFields(d, v, kpath, phaseFields[kind], &ph.Phase, nil) == nil {
			continue
		}
		if kind == loadgen.KindRamp && ph.From == 0 && ph.To == 0 && o.vals[kind] != nil {
			d.errf(v, join(kpath, "to"), "from and to are both zero")
		}
		if ph.Count() > maxCount {
			d.errf(o.keys[kind], kpath, "publishes %d jobs, more than the limit of %d", ph.Count(), maxCount)
		}
		s.Load = append(s.Load, ph)
	}
}

// decodeGates decodes the gate list. An entry is an expression, or a mapping
// {expr: EXPR, when: {MATRIX_KEY: VALUE, ...}, abort: BOOL}: when limits it to
// the variants with those matrix values (checkGateWhen judges the keys);
// abort checks it during the run too.
func decodeGates(d *decoder, n *yaml.Node, path string, s *Scenario) {
	for i, item := range d.list(n, path, maxVariants) {
		ipath := path + "." + strconv.Itoa(i)
		item = deref(item)
		var g Gate
		var abortAt *yaml.Node
		if item != nil && item.Kind == yaml.MappingNode {
			o := d.object(item, ipath, "expr", "when", "abort")
			if o == nil || !o.require("expr") {
				continue
			}
			if o.has("when") {
				g.When, g.whenPos = d.gateWhen(o.vals["when"], ipath+".when")
			}
			if o.has("abort") {
				g.Abort, _ = o.boolean("abort")
				abortAt = o.keys["abort"]
			}
			item = o.vals["expr"]
			ipath += ".expr"
		}
		if item == nil || item.Kind != yaml.ScalarNode || item.Tag != "!!str" {
			d.errf(item, ipath, "must be an expression such as \"lost == 0\", got %s", describe(item))
			continue
		}
		e, err := gate.Parse(item.Value, report.Catalog)
		if err != nil {
			d.gateError(item, ipath, err)
			continue
		}
		if g.Abort {
			if err := report.CheckAbort(e); err != nil {
				d.errf(abortAt, strings.TrimSuffix(ipath, ".expr"), "%v", err)
				continue
			}
		}
		g.Expr, g.Source, g.Pos = e, item.Value, d.pos(item)
		s.Gates = append(s.Gates, g)
	}
}

// gateError records a gate's syntax error, pointing at its column when the
// scalar sits on one line as written.
func (d *decoder) gateError(item *yaml.Node, path string, err error) {
	var se *gate.SyntaxError
	p := d.pos(item)
	msg := err.Error()
	if errors.As(err, &se) {
		msg = se.Msg
		if p.Set == "" && (item.Style == 0 || item.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0) {
			p.Col += se.Col - 1
			if item.Style != 0 {
				p.Col++
			}
		}
	}
	d.errs = append(d.errs, &Error{Pos: p, Msg: path + ": " + msg})
}

// gateWhen decodes a gate's variant condition: matrix keys and one of their
// values each (decoded), with the keys' positions. checkGateWhen holds them
// against the matrix once the whole file is decoded.
func (d *decoder) gateWhen(n *yaml.Node, path string) (map[string]any, map[string]Pos) {
	o := d.object(n, path)
	if o == nil {
		return nil, nil
	}
	when, at := map[string]any{}, map[string]Pos{}
	for i := 0; i+1 < len(o.n.Content); i += 2 {
		k, v := deref(o.n.Content[i]), deref(o.n.Content[i+1])
		if k == nil || o.keys[k.Value] != k {
			continue
		}
		var val any
		if v == nil || v.Kind != yaml.ScalarNode || v.Decode(&val) != nil {
			d.errf(v, join(path, k.Value), "must be a matrix value, got %s", describe(v))
			continue
		}
		when[k.Value], at[k.Value] = val, d.pos(k)
	}
	return when, at
}

func decodeThresholds(d *decoder, n *yaml.Node, path string, b *Baseline) {
	t := d.object(n, path)
	if t == nil {
		return
	}
	b.Thresholds = map[string]float64{}
	for i := 0; i+1 < len(t.n.Content); i += 2 {
		k := deref(t.n.Content[i])
		if k == nil || t.keys[k.Value] != k {
			continue
		}
		if m, known := report.LookupMetric(k.Value); !known || !m.Compare {
			d.errf(k, path, "%s is not a compared metric; want one of %s", k.Value, strings.Join(report.CompareMetrics(), ", "))
			continue
		}
		if v, ok := t.fraction(k.Value); ok {
			b.Thresholds[k.Value] = v
		}
	}
}
