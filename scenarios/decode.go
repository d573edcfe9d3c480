package scenarios

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/report/gate"
)

// Limits that catch typos (a missing unit, an extra zero) rather than real intent.
const (
	maxDuration  = 24 * time.Hour
	maxProcesses = 256
	maxCount     = 1 << 30
	maxSize      = 1 << 30 // bytes per message or held per job
	maxAxes      = 100     // values per matrix key
	maxVariants  = 1000
)

// Defaults applied when a key is absent.
const (
	DefaultProcesses    = 1
	DefaultConcurrency  = 1
	DefaultPrefetch     = 10
	DefaultTimeout      = 30 * time.Second
	DefaultMaxAttempts  = 5
	DefaultMinDelay     = 100 * time.Millisecond
	DefaultMaxDelay     = 10 * time.Second
	DefaultFailureRatio = 0.5
	DefaultMinRequests  = 20
	DefaultOpenFor      = 5 * time.Second
	DefaultSize         = 1 << 10
	DefaultDrainTimeout = 120 * time.Second
)

var (
	nameRe    = regexp.MustCompile(`^[a-z0-9-]+$`)
	segmentRe = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

var topKeys = []string{"name", "description", "seed", "broker", "app", "task", "event", "queue",
	"workers", "job", "dependency", "load", "faults", "matrix", "drain_timeout", "gates", "baseline", "chaos"}

// decode builds a Scenario from the document's root mapping, recording every error.
func (d *decoder) decode(root *yaml.Node) *Scenario {
	s := &Scenario{}
	s.setDefaults()
	top := d.object(root, "", topKeys...)
	if top == nil {
		return s
	}
	top.require("name", "load")

	if v, ok := top.str("name"); ok {
		if !nameRe.MatchString(v) {
			d.errf(top.vals["name"], "name", "%q must match [a-z0-9-]+", v)
		}
		s.Name = v
	}
	s.Description, _ = top.str("description")
	if v, ok := top.integer("seed", math.MinInt64, math.MaxInt64); ok {
		s.Seed, s.SeedSet = v, true
	}
	if top.has("broker") {
		d.broker(top, s)
	}
	d.names(top, s)
	if top.has("queue") {
		if o := d.object(top.vals["queue"], "queue", "type"); o != nil {
			if v, ok := o.oneOf("type", "classic", "quorum"); ok {
				s.Queue.Type = v
			}
		}
	}
	if top.has("workers") {
		d.workers(top.vals["workers"], &s.Workers)
	}
	if top.has("job") {
		d.job(top.vals["job"], &s.Job)
	}
	if top.has("dependency") {
		if o := d.object(top.vals["dependency"], "dependency", "latency", "jitter", "error_rate"); o != nil {
			if v, ok := o.dur("latency", maxDuration); ok {
				s.Dependency.Latency = v
			}
			if v, ok := o.dur("jitter", maxDuration); ok {
				s.Dependency.Jitter = v
			}
			if v, ok := o.number("error_rate", 0, 1); ok {
				s.Dependency.ErrorRate = v
			}
		}
	}
	if top.has("load") {
		s.Load = d.load(top.vals["load"])
	}
	if v, ok := top.positiveDur("drain_timeout", maxDuration); ok {
		s.DrainTimeout = v
	}
	if top.has("faults") {
		s.Faults = d.faults(top.vals["faults"], s)
	}
	if top.has("matrix") {
		s.Matrix = d.matrix(top.vals["matrix"])
	}
	if top.has("gates") {
		s.Gates = d.gates(top.vals["gates"])
	}
	if top.has("baseline") {
		d.baseline(top.vals["baseline"], &s.Baseline)
	}
	if top.has("chaos") {
		if o := d.object(top.vals["chaos"], "chaos", "toxiproxy_url"); o != nil {
			if v, ok := o.str("toxiproxy_url"); ok {
				if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					d.errf(o.vals["toxiproxy_url"], "chaos.toxiproxy_url", "must be an http:// or https:// URL")
				}
				s.Chaos.ToxiproxyURL = v
			}
		}
	}
	if s.Broker.URL != "" && !s.Broker.Managed {
		if err := s.CheckBroker(false); err != nil {
			var es Errors
			if errors.As(err, &es) {
				d.errs = append(d.errs, es...)
			}
		}
	}
	return s
}

func (s *Scenario) setDefaults() {
	s.Queue.Type = "classic"
	s.Workers = Workers{
		Processes:   DefaultProcesses,
		Concurrency: DefaultConcurrency,
		Prefetch:    DefaultPrefetch,
		Timeout:     DefaultTimeout,
		Retry: Retry{MaxAttempts: DefaultMaxAttempts, MinDelay: DefaultMinDelay,
			MaxDelay: DefaultMaxDelay, Jitter: true, Mode: "broker"},
		Breaker: Breaker{FailureRatio: DefaultFailureRatio, MinRequests: DefaultMinRequests, OpenFor: DefaultOpenFor},
	}
	s.Job.Work = Dist{Kind: DistFixed}
	s.DrainTimeout = DefaultDrainTimeout
}

func (d *decoder) broker(top *obj, s *Scenario) {
	o := d.object(top.vals["broker"], "broker", "url", "managed")
	if o == nil {
		return
	}
	if v, ok := o.str("url"); ok {
		// The URL may hold a password: never echo it.
		if u, err := url.Parse(v); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			d.errf(o.vals["url"], "broker.url", "must be an amqp:// or amqps:// URL with a host")
		}
		s.Broker.URL = v
	}
	s.Broker.Managed, _ = o.boolean("managed")
}

// checkName validates a task or event name the way the worker runtime does.
func checkName(name string, minSegments int) error {
	segs := strings.Split(name, ".")
	for _, seg := range segs {
		if !segmentRe.MatchString(seg) {
			return fmt.Errorf("segment %q of %q must match [a-z][a-z0-9_-]*", seg, name)
		}
	}
	if len(segs) < minSegments {
		return fmt.Errorf("%q has %d segment(s), needs at least %d", name, len(segs), minSegments)
	}
	return nil
}

func (d *decoder) names(top *obj, s *Scenario) {
	app, hasApp := top.str("app")
	if hasApp && !segmentRe.MatchString(app) {
		d.errf(top.vals["app"], "app", "%q must match [a-z][a-z0-9_-]*", app)
	}
	task, hasTask := top.str("task")
	event, hasEvent := top.str("event")
	switch {
	case hasTask && hasEvent:
		d.errf(top.keys["event"], "", "task and event are exclusive: set exactly one")
	case !hasTask && !hasEvent && !top.has("task") && !top.has("event"):
		d.errf(top.n, "", "missing task or event")
	}
	if hasTask {
		if err := checkName(task, 3); err != nil {
			d.errf(top.vals["task"], "task", "%v (a task is app.model.verb)", err)
		} else if first, _, _ := strings.Cut(task, "."); hasApp && first != app {
			d.errf(top.vals["task"], "task", "%q belongs to app %q, not %q", task, first, app)
		} else if !hasApp {
			app = first
		}
		s.Task = task
	}
	if hasEvent {
		if err := checkName(event, 2); err != nil {
			d.errf(top.vals["event"], "event", "%v (an event is model.verbed)", err)
		}
		if !hasApp && !top.has("app") {
			d.errf(top.vals["event"], "event", "needs app: the subscribing app names the queue <app>.<event>")
		}
		s.Event = event
	}
	s.App = app
}

func (d *decoder) workers(n *yaml.Node, w *Workers) {
	o := d.object(n, "workers", "processes", "concurrency", "prefetch", "timeout", "rate_limit", "retry", "breaker")
	if o == nil {
		return
	}
	if v, ok := o.integer("processes", 1, maxProcesses); ok {
		w.Processes = int(v)
	}
	if v, ok := o.integer("concurrency", 1, 100000); ok {
		w.Concurrency = int(v)
	}
	if v, ok := o.integer("prefetch", 0, math.MaxUint16); ok {
		w.Prefetch = int(v)
	}
	if v, ok := o.positiveDur("timeout", maxDuration); ok {
		w.Timeout = v
	}
	if v, ok := o.rate("rate_limit"); ok {
		w.RateLimit = v
	}
	if o.has("retry") {
		if r := d.object(o.vals["retry"], "workers.retry", "max_attempts", "min_delay", "max_delay", "jitter", "mode"); r != nil {
			if v, ok := r.integer("max_attempts", 1, 1000); ok {
				w.Retry.MaxAttempts = int(v)
			}
			minOK, maxOK := false, false
			if v, ok := r.positiveDur("min_delay", maxDuration); ok {
				w.Retry.MinDelay, minOK = v, true
			}
			if v, ok := r.positiveDur("max_delay", maxDuration); ok {
				w.Retry.MaxDelay, maxOK = v, true
			}
			if (minOK || maxOK) && w.Retry.MaxDelay < w.Retry.MinDelay {
				at := r.vals["max_delay"]
				if at == nil {
					at = r.vals["min_delay"]
				}
				d.errf(at, "workers.retry", "max_delay %s is below min_delay %s", w.Retry.MaxDelay, w.Retry.MinDelay)
			}
			if v, ok := r.boolean("jitter"); ok {
				w.Retry.Jitter = v
			}
			if v, ok := r.oneOf("mode", "broker", "inprocess"); ok {
				w.Retry.Mode = v
			}
		}
	}
	if o.has("breaker") {
		if b := d.object(o.vals["breaker"], "workers.breaker", "enabled", "failure_ratio", "min_requests", "open_for"); b != nil {
			if v, ok := b.boolean("enabled"); ok {
				w.Breaker.Enabled = v
			}
			if v, ok := b.number("failure_ratio", 0, 1); ok {
				if v == 0 {
					d.errf(b.vals["failure_ratio"], "workers.breaker.failure_ratio", "must be above zero")
				}
				w.Breaker.FailureRatio = v
			}
			if v, ok := b.integer("min_requests", 1, maxCount); ok {
				w.Breaker.MinRequests = int(v)
			}
			if v, ok := b.positiveDur("open_for", maxDuration); ok {
				w.Breaker.OpenFor = v
			}
		}
	}
}

func (d *decoder) job(n *yaml.Node, j *Job) {
	o := d.object(n, "job", "work", "fail_rate", "fatal_rate", "dependency_calls", "hold", "emit")
	if o == nil {
		return
	}
	if o.has("work") {
		j.Work = d.dist(o.vals["work"], "job.work")
	}
	if v, ok := o.number("fail_rate", 0, 1); ok {
		j.FailRate = v
	}
	if v, ok := o.number("fatal_rate", 0, 1); ok {
		j.FatalRate = v
	}
	if v, ok := o.integer("dependency_calls", 0, 1000); ok {
		j.DependencyCalls = int(v)
	}
	if v, ok := o.size("hold", maxSize); ok {
		j.Hold = v
	}
	if v, ok := o.str("emit"); ok {
		if err := checkName(v, 2); err != nil {
			d.errf(o.vals["emit"], "job.emit", "%v (an event is model.verbed)", err)
		}
		j.Emit = v
	}
}

// dist decodes `5ms` or {dist: exponential, mean: 5ms} or {dist: lognormal, p50: 5ms, p99: 50ms}.
func (d *decoder) dist(n *yaml.Node, path string) Dist {
	n = deref(n)
	if n != nil && n.Kind == yaml.ScalarNode {
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

func (d *decoder) list(n *yaml.Node, path string) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		d.errf(n, path, "must be a list, got %s", describe(n))
		return nil
	}
	return n.Content
}

func (d *decoder) load(n *yaml.Node) []Phase {
	items := d.list(n, "load")
	if dn := deref(n); dn != nil && dn.Kind == yaml.SequenceNode && len(items) == 0 {
		d.errf(n, "load", "needs at least one phase")
	}
	var out []Phase
	for i, item := range items {
		path := "load." + strconv.Itoa(i)
		o := d.object(item, path, Spike, Steady, Ramp)
		if o == nil {
			continue
		}
		if len(o.keys) != 1 {
			if len(o.keys) == 0 && len(o.n.Content) == 0 {
				d.errf(o.n, path, "needs one of spike, steady or ramp")
			} else if len(o.keys) > 1 {
				d.errf(o.n, path, "holds more than one phase; write each as its own list item")
			}
			continue
		}
		var kind string
		for k := range o.keys {
			kind = k
		}
		ppath := join(path, kind)
		ph := Phase{Kind: kind, Size: DefaultSize, Pos: d.pos(o.keys[kind])}
		keys := map[string][]string{Spike: {"jobs", "size"}, Steady: {"rate", "for", "size"}, Ramp: {"from", "to", "over", "size"}}[kind]
		p := d.object(o.vals[kind], ppath, keys...)
		if p == nil {
			continue
		}
		p.require(keys[:len(keys)-1]...)
		if v, ok := p.size("size", maxSize); ok {
			ph.Size = v
		}
		switch kind {
		case Spike:
			if v, ok := p.integer("jobs", 1, maxCount); ok {
				ph.Jobs = int(v)
			}
		case Steady:
			if v, ok := p.rate("rate"); ok {
				if v == 0 {
					d.errf(p.vals["rate"], join(ppath, "rate"), "must be above zero")
				}
				ph.Rate = v
			}
			ph.For, _ = p.positiveDur("for", maxDuration)
		case Ramp:
			from, okF := p.rate("from")
			to, okT := p.rate("to")
			if okF && okT && from == 0 && to == 0 {
				d.errf(p.vals["to"], join(ppath, "to"), "from and to are both zero")
			}
			ph.From, ph.To = from, to
			ph.Over, _ = p.positiveDur("over", maxDuration)
		}
		if ph.JobCount() > maxCount {
			d.errf(o.keys[kind], ppath, "publishes %d jobs, more than the limit of %d", ph.JobCount(), maxCount)
		}
		out = append(out, ph)
	}
	return out
}

// gates decodes the gate list. An entry is an expression, or a mapping
// {expr: EXPR, when: {MATRIX_KEY: VALUE, ...}} that applies only to the
// variants with those matrix values.
func (d *decoder) gates(n *yaml.Node) []Gate {
	var out []Gate
	for i, item := range d.list(n, "gates") {
		path := "gates." + strconv.Itoa(i)
		item = deref(item)
		var when map[string]string
		if item != nil && item.Kind == yaml.MappingNode {
			o := d.object(item, path, "expr", "when")
			if o == nil || !o.require("expr") {
				continue
			}
			if o.has("when") {
				when = d.gateWhen(o.vals["when"], path+".when")
			}
			item = o.vals["expr"]
			path += ".expr"
		}
		if item == nil || item.Kind != yaml.ScalarNode || item.Tag != "!!str" {
			d.errf(item, path, "must be an expression such as \"lost == 0\", got %s", describe(item))
			continue
		}
		e, err := gate.Parse(item.Value)
		if err != nil {
			var se *gate.SyntaxError
			p := d.pos(item)
			msg := err.Error()
			if errors.As(err, &se) {
				msg = se.Msg
				// Point at the offending column when the scalar sits on one line as written.
				if p.Set == "" && (item.Style == 0 || item.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0) {
					p.Col += se.Col - 1
					if item.Style != 0 {
						p.Col++
					}
				}
			}
			d.errs = append(d.errs, &Error{Pos: p, Msg: path + ": " + msg})
			continue
		}
		out = append(out, Gate{Expr: e, Source: item.Value, Pos: d.pos(item), When: when})
	}
	return out
}

// gateWhen decodes a gate's variant condition: matrix keys and one of their
// values each. The keys are checked against the matrix by the runner, since a
// --set may pin a matrix key and so take it out of the matrix.
func (d *decoder) gateWhen(n *yaml.Node, path string) map[string]string {
	o := d.object(n, path)
	if o == nil {
		return nil
	}
	when := map[string]string{}
	for i := 0; i+1 < len(o.n.Content); i += 2 {
		k, v := deref(o.n.Content[i]), deref(o.n.Content[i+1])
		if k == nil || o.keys[k.Value] != k {
			continue
		}
		if v == nil || v.Kind != yaml.ScalarNode {
			d.errf(v, join(path, k.Value), "must be a matrix value, got %s", describe(v))
			continue
		}
		when[k.Value] = v.Value
	}
	return when
}

func (d *decoder) baseline(n *yaml.Node, b *Baseline) {
	o := d.object(n, "baseline", "file", "max_regression", "thresholds", "min_samples")
	if o == nil {
		return
	}
	b.File, _ = o.str("file")
	if v, ok := o.fraction("max_regression"); ok {
		b.MaxRegression = v
	}
	if v, ok := o.integer("min_samples", 0, maxCount); ok {
		b.MinSamples = int(v)
	}
	if o.has("thresholds") {
		t := d.object(o.vals["thresholds"], "baseline.thresholds")
		if t == nil {
			return
		}
		b.Thresholds = map[string]float64{}
		for i := 0; i+1 < len(t.n.Content); i += 2 {
			k := deref(t.n.Content[i])
			if k == nil || t.keys[k.Value] != k {
				continue
			}
			if _, known := gate.KindOf(k.Value); !known {
				d.errf(k, "baseline.thresholds", "unknown metric %s", k.Value)
				continue
			}
			if v, ok := t.fraction(k.Value); ok {
				b.Thresholds[k.Value] = v
			}
		}
	}
}
