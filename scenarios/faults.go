package scenarios

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// attrUnit is the unit Toxiproxy expects for a toxic attribute.
type attrUnit int

const (
	unitMS    attrUnit = iota // a duration, in milliseconds
	unitUS                    // a duration, in microseconds
	unitBytes                 // a size, in bytes
	unitKBps                  // a bandwidth, in KB/s (1 KB = 1000 bytes)
)

// toxicAttrs lists each toxic's attributes (Toxiproxy v2's names).
var toxicAttrs = map[string]map[string]attrUnit{
	"latency":    {"latency": unitMS, "jitter": unitMS},
	"bandwidth":  {"rate": unitKBps},
	"slow_close": {"delay": unitMS},
	"timeout":    {"timeout": unitMS},
	"reset_peer": {"timeout": unitMS},
	"slicer":     {"average_size": unitBytes, "size_variation": unitBytes, "delay": unitUS},
	"limit_data": {"bytes": unitBytes},
}

// toxicRequired lists the attributes without which a toxic does nothing.
var toxicRequired = map[string][]string{
	"latency":    {"latency"},
	"bandwidth":  {"rate"},
	"slow_close": {"delay"},
	"slicer":     {"average_size"},
	"limit_data": {"bytes"},
}

var attrKeys = []string{"latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes"}

var faultKeys = append([]string{"at", "for", "target", "toxic", "down", "action", "stream", "toxicity"}, attrKeys...)

func toxicNames() []string {
	names := make([]string, 0, len(toxicAttrs))
	for n := range toxicAttrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (d *decoder) faults(n *yaml.Node, s *Scenario) []Fault {
	var out []Fault
	for i, item := range d.list(n, "faults") {
		path := "faults." + strconv.Itoa(i)
		o := d.object(item, path, faultKeys...)
		if o == nil {
			continue
		}
		if f, ok := d.fault(o, path); ok {
			out = append(out, f)
		}
	}
	// Faults scheduled after the run cannot happen; that is a mistake in the file.
	end := s.LoadDuration() + s.DrainTimeout
	for _, f := range out {
		if f.At >= end {
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: fmt.Sprintf("fault at %s starts after the run ends (load %s + drain_timeout %s)", f.At, s.LoadDuration(), s.DrainTimeout)})
		}
		if f.Target == TargetDependency && s.Job.DependencyCalls == 0 {
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: "a dependency fault needs job.dependency_calls > 0 to have any effect"})
		}
	}
	return out
}

func (d *decoder) fault(o *obj, path string) (Fault, bool) {
	f := Fault{Pos: d.pos(o.n)}
	ok := o.require("at", "target")
	if v, good := o.dur("at", maxDuration); good {
		f.At = v
	}
	target, good := o.oneOf("target", TargetDependency, TargetBroker, TargetWorker)
	ok = ok && good
	f.Target = target
	f.Toxic, _ = o.str("toxic")
	f.Down, _ = o.boolean("down")
	f.Action, _ = o.str("action")

	set := 0
	for _, b := range []bool{f.Toxic != "", f.Down, f.Action != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		d.errf(o.n, path, "needs exactly one of toxic, down: true or action")
		return f, false
	}
	switch {
	case f.Toxic != "":
		if target == TargetWorker {
			d.errf(o.vals["toxic"], path, "a worker takes an action (kill, stop, pause), not a toxic")
			ok = false
		}
		ok = d.toxic(o, path, &f) && ok
	case f.Down:
		if target == TargetWorker {
			d.errf(o.vals["down"], path, "a worker takes an action (kill, stop, pause), not down")
			ok = false
		}
	default:
		actions := map[string][]string{TargetBroker: {"restart", "kill", "block"}, TargetWorker: {"kill", "stop", "pause"}}[target]
		if target == TargetDependency {
			d.errf(o.vals["action"], join(path, "action"), "the dependency takes a toxic or down: true, not an action")
			ok = false
		} else if target != "" && !contains(actions, f.Action) {
			d.errf(o.vals["action"], join(path, "action"), "must be one of %s for target %s, got %q", strings.Join(actions, ", "), target, f.Action)
			ok = false
		}
	}
	if f.Toxic == "" {
		for _, k := range append([]string{"stream", "toxicity"}, attrKeys...) {
			if o.keys[k] != nil {
				d.errf(o.keys[k], path, "%s applies to toxics only", k)
				ok = false
			}
		}
	}

	// Durations: what needs `for`, what must not have it.
	instant := f.Action == "restart" || f.Action == "kill" || f.Action == "stop"
	brief := f.Toxic == "timeout" || f.Toxic == "reset_peer"
	switch {
	case instant && o.keys["for"] != nil:
		d.errf(o.keys["for"], path, "action %s is instantaneous: remove for", f.Action)
		ok = false
	case !instant && !o.has("for") && !brief:
		d.errf(o.n, path, "missing for (how long the %s lasts)", f.Kind())
		ok = false
	case o.has("for"):
		if v, good := o.positiveDur("for", maxDuration); good {
			f.For = v
		} else {
			ok = false
		}
	case brief:
		f.For = BriefFor
	}
	return f, ok
}

func (d *decoder) toxic(o *obj, path string, f *Fault) bool {
	attrs, known := toxicAttrs[f.Toxic]
	if !known {
		msg := fmt.Sprintf("unknown toxic %q; want one of %s", f.Toxic, strings.Join(toxicNames(), ", "))
		if s := closest(f.Toxic, toxicNames()); s != "" {
			msg = fmt.Sprintf("unknown toxic %q; did you mean %s?", f.Toxic, s)
		}
		d.errf(o.vals["toxic"], join(path, "toxic"), "%s", msg)
		return false
	}
	ok := true
	f.Stream = "down"
	if v, good := o.oneOf("stream", "down", "up", "both"); good {
		f.Stream = v
	}
	f.Toxicity = 1
	if v, good := o.number("toxicity", 0, 1); good {
		if v == 0 {
			d.errf(o.vals["toxicity"], join(path, "toxicity"), "must be above zero")
		}
		f.Toxicity = v
	}
	f.Attrs = map[string]int64{}
	for _, k := range attrKeys {
		if o.keys[k] == nil {
			continue
		}
		unit, allowed := attrs[k]
		if !allowed {
			want := make([]string, 0, len(attrs))
			for a := range attrs {
				want = append(want, a)
			}
			sort.Strings(want)
			d.errf(o.keys[k], path, "%s is not an attribute of toxic %s (it takes %s)", k, f.Toxic, strings.Join(want, ", "))
			ok = false
			continue
		}
		v, good := d.attr(o, k, join(path, k), unit)
		if !good {
			ok = false
			continue
		}
		f.Attrs[k] = v
	}
	for _, k := range toxicRequired[f.Toxic] {
		if o.keys[k] == nil {
			d.errf(o.n, path, "toxic %s needs %s", f.Toxic, k)
			ok = false
		}
	}
	return ok
}

// attr converts a toxic attribute to Toxiproxy's unit.
func (d *decoder) attr(o *obj, key, path string, unit attrUnit) (int64, bool) {
	switch unit {
	case unitMS, unitUS:
		v, ok := o.dur(key, maxDuration)
		if !ok {
			return 0, false
		}
		per := time.Millisecond
		if unit == unitUS {
			per = time.Microsecond
		}
		if v%per != 0 {
			d.errf(o.vals[key], path, "%s is not a whole number of %s (Toxiproxy's unit)", v, per)
			return 0, false
		}
		return int64(v / per), true
	case unitBytes:
		return o.size(key, maxSize)
	default:
		n, good := o.scalar(key, "a bandwidth such as 512 (KB/s) or 1MB/s")
		if !good {
			return 0, false
		}
		var kbps float64
		if num, ok := strings.CutSuffix(n.Value, "/s"); ok {
			b, err := parseSize(num)
			if err != nil {
				d.errf(n, path, "%v", err)
				return 0, false
			}
			kbps = float64(b) / 1000
		} else {
			v, err := strconv.ParseFloat(n.Value, 64)
			if err != nil || strings.ContainsAny(n.Value, "nNiI_xX") {
				d.errf(n, path, "bad bandwidth %q: want KB/s or e.g. 1MB/s", n.Value)
				return 0, false
			}
			kbps = v
		}
		if kbps < 1 || kbps > 1e9 || kbps != float64(int64(kbps)) {
			d.errf(n, path, "bandwidth must be a whole number of KB/s, at least 1, got %v", kbps)
			return 0, false
		}
		return int64(kbps), true
	}
}

// CheckBroker reports the faults that need a managed broker (broker restart
// and kill) when the broker is not managed. The runner calls it once it knows
// where the broker comes from; Parse calls it when the file pins an external URL.
func (s *Scenario) CheckBroker(managed bool) error {
	if managed {
		return nil
	}
	var es Errors
	for _, f := range s.Faults {
		if f.Target == TargetBroker && (f.Action == "restart" || f.Action == "kill") {
			es = append(es, &Error{Pos: f.Pos, Msg: fmt.Sprintf("broker %s needs a managed broker (broker.managed: true), but the broker is external", f.Action)})
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}
