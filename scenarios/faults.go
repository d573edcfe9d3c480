package scenarios

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/chaos/fault"
)

// faultKeys are the keys a fault may have: its own and every toxic attribute.
func faultKeys() []string {
	return append([]string{"at", "for", "target", "name", "toxic", "down", "action", "stream", "toxicity", "node", "nodes", "queue"}, fault.AttrNames()...)
}

func decodeFaults(d *decoder, n *yaml.Node, path string, s *Scenario) {
	for i, item := range d.list(n, path, maxFaults) {
		ipath := path + "." + strconv.Itoa(i)
		if o := d.object(item, ipath, faultKeys()...); o != nil {
			if f, ok := d.fault(o, ipath); ok {
				s.Faults = append(s.Faults, f)
			}
		}
	}
}

// fault reads one fault's keys as written, converts toxic attributes to the
// vocabulary's units, and lets the vocabulary judge it: each problem is
// reported at the key it names.
func (d *decoder) fault(o *obj, path string) (Fault, bool) {
	f := Fault{Pos: d.pos(o.n)}
	before := len(d.errs)
	o.require("at", "target")
	f.At, _ = o.dur("at", maxDuration)
	f.For, _ = o.positiveDur("for", maxDuration)
	f.Target, _ = o.str("target")
	f.Name, _ = o.str("name")
	f.Toxic, _ = o.str("toxic")
	f.Down, _ = o.boolean("down")
	f.Action, _ = o.str("action")
	f.Stream, _ = o.str("stream")
	f.Node = d.faultNode(o, path)
	f.Groups = d.faultGroups(o, path)
	f.Queue, _ = o.str("queue")
	if v, ok := o.number("toxicity", 0, 1); ok {
		if v == 0 {
			d.errf(o.vals["toxicity"], join(path, "toxicity"), "must be above zero")
		}
		f.Toxicity = v
	}
	toxic, known := fault.LookupToxic(f.Toxic)
	for _, k := range fault.AttrNames() {
		if o.keys[k] == nil {
			continue
		}
		if f.Attrs == nil {
			f.Attrs = map[string]int64{}
		}
		// An attribute the toxic lacks is kept as 0 so that the vocabulary names it.
		f.Attrs[k] = 0
		if a, ok := toxic.Attr(k); known && ok {
			if v, good := d.attr(o, k, join(path, k), a.Unit); good {
				f.Attrs[k] = v
			}
		}
	}
	for _, p := range f.Problems() {
		// A bad word points at the value; a key that should not be there at the key.
		at := o.n
		if n := o.vals[p.Field]; n != nil && valueFields[p.Field] {
			at = n
		} else if n := o.keys[p.Field]; n != nil {
			at = n
		}
		d.errf(at, path, "%s%s", p.Msg, suggestion(p.Field, f))
	}
	return f, len(d.errs) == before
}

// valueFields are the fault keys whose problems are about their value.
var valueFields = map[string]bool{"at": true, "target": true, "name": true, "toxic": true, "action": true, "stream": true, "toxicity": true,
	"node": true, "nodes": true, "queue": true}

// faultNode reads node: a number or a word (leader, any), as written.
func (d *decoder) faultNode(o *obj, path string) string {
	n := o.vals["node"]
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		d.errf(n, join(path, "node"), "must be a node number or %s, %s or %s, got %s", fault.NodeLeader, fault.NodeFollower, fault.NodeAny, describe(n))
		return ""
	}
	return n.Value
}

// faultGroups reads nodes: a list of lists of node numbers.
func (d *decoder) faultGroups(o *obj, path string) [][]int {
	n := o.vals["nodes"]
	if n == nil {
		return nil
	}
	var groups [][]int
	if err := n.Decode(&groups); err != nil || n.Kind != yaml.SequenceNode {
		d.errf(n, join(path, "nodes"), "must be a list of groups of node numbers, e.g. [[1], [2, 3]]")
		return nil
	}
	return groups
}

// suggestion offers the vocabulary word closest to a misspelt one.
func suggestion(field string, f Fault) string {
	var got string
	var words []string
	switch field {
	case "toxic":
		got, words = f.Toxic, fault.ToxicNames()
	case "action":
		got, words = f.Action, fault.ActionNames(f.Target)
	case "target":
		got, words = f.Target, fault.TargetNames()
	case "stream":
		got, words = f.Stream, fault.StreamNames()
	}
	if got == "" || slices.Contains(words, got) {
		return ""
	}
	if c := closest(got, words); c != "" {
		return "; did you mean " + c + "?"
	}
	return ""
}

// attr converts a toxic attribute to its unit in the vocabulary (Toxiproxy's).
func (d *decoder) attr(o *obj, key, path string, unit fault.Unit) (int64, bool) {
	switch unit {
	case fault.Millis, fault.Micros:
		v, ok := o.dur(key, maxDuration)
		if !ok {
			return 0, false
		}
		per := unit.Duration()
		if v%per != 0 {
			d.errf(o.vals[key], path, "%s is not a whole number of %s (Toxiproxy's unit)", v, per)
			return 0, false
		}
		return int64(v / per), true
	case fault.Bytes:
		return o.size(key, maxSize)
	default:
		return d.bandwidth(o, key, path)
	}
}

// bandwidth reads KB/s: a bare number, or a size per second such as 1MB/s.
func (d *decoder) bandwidth(o *obj, key, path string) (int64, bool) {
	n := o.vals[key]
	if n == nil {
		return 0, false
	}
	if _, ok := d.scalar(n, path, "a bandwidth such as 512 (KB/s) or 1MB/s"); !ok {
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

// checkClusterFaults checks the faults against the broker's size (broker.nodes).
func (d *decoder) checkClusterFaults(s *Scenario) {
	for _, f := range s.Faults {
		for _, p := range f.CheckCluster(s.Broker.Size()) {
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: p.Msg})
		}
	}
}

// CheckBroker reports the faults that act on the broker node itself, which
// need a managed broker, when the broker is not managed. The runner calls it
// once it knows where the broker comes from; Parse calls it when the file pins
// an external URL.
func (s *Scenario) CheckBroker(managed bool) error {
	if managed {
		return nil
	}
	var es Errors
	for _, f := range s.Faults {
		if f.NeedsManagedBroker() {
			es = append(es, &Error{Pos: f.Pos, Msg: fmt.Sprintf("broker %s needs a managed broker (broker.managed: true), but the broker is external", f.Action)})
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}
