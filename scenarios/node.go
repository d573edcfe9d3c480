package scenarios

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// origins records where nodes that are not in the file came from (--set
// values, keys created by a --set or a matrix key), so errors about them point
// at the flag or the matrix key instead of a meaningless position.
type origins map[*yaml.Node]Pos

// decoder turns a YAML node tree into values, collecting every error.
type decoder struct {
	file   string
	origin origins
	errs   Errors
}

func (d *decoder) pos(n *yaml.Node) Pos {
	if p, ok := d.origin[n]; ok {
		return p
	}
	if n == nil || n.Line == 0 {
		return Pos{File: d.file, Line: 1, Col: 1}
	}
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

// errf records an error at n; path (the dotted key path) prefixes the message
// unless the position already names it.
func (d *decoder) errf(n *yaml.Node, path, format string, args ...any) {
	p := d.pos(n)
	msg := fmt.Sprintf(format, args...)
	if path != "" && p.Set != path {
		msg = path + ": " + msg
	}
	d.errs = append(d.errs, &Error{Pos: p, Msg: msg})
}

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// obj is a decoded mapping: its keys checked against the allowed ones.
type obj struct {
	d    *decoder
	n    *yaml.Node
	path string
	keys map[string]*yaml.Node // key nodes, for positions
	vals map[string]*yaml.Node // non-null values
}

// object checks that n is a mapping with only allowed keys, no duplicates.
// It returns nil (after recording an error) when n is not a mapping.
func (d *decoder) object(n *yaml.Node, path string, allowed ...string) *obj {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		d.errf(n, path, "must be a mapping, got %s", describe(n))
		return nil
	}
	o := &obj{d: d, n: n, path: path, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errf(n.Content[i], path, "keys must be strings")
			continue
		}
		if _, dup := o.keys[k.Value]; dup {
			d.errf(k, path, "duplicate key %s", k.Value)
			continue
		}
		if allowed != nil && !contains(allowed, k.Value) {
			msg := fmt.Sprintf("unknown key %s", k.Value)
			if s := closest(k.Value, allowed); s != "" {
				msg += fmt.Sprintf("; did you mean %s?", s)
			}
			d.errf(k, path, "%s", msg)
			continue
		}
		o.keys[k.Value] = k
		if !isNull(v) {
			o.vals[k.Value] = v
		}
	}
	return o
}

func (o *obj) has(key string) bool { return o.vals[key] != nil }

// require records an error for each absent key, at the mapping.
func (o *obj) require(keys ...string) bool {
	ok := true
	for _, k := range keys {
		if !o.has(k) {
			where := o.n
			if kn := o.keys[k]; kn != nil {
				where = kn
			}
			o.d.errf(where, o.path, "missing %s", k)
			ok = false
		}
	}
	return ok
}

// Node readers: each reads one value node at path, recording a problem in d
// when it is not what the key wants.

// scalar checks that n is a scalar (not a boolean), described as want otherwise.
func (d *decoder) scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!bool" {
		d.errf(n, path, "must be %s, got %s", want, describe(n))
		return nil, false
	}
	return n, true
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		d.errf(n, path, "must be a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.errf(n, path, "must be true or false, got %s", describe(n))
		return false, false
	}
	return b, true
}

func (d *decoder) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	var i int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		d.errf(n, path, "must be an integer, got %s", describe(n))
		return 0, false
	}
	if i < lo || i > hi {
		d.errf(n, path, "must be %s, got %d", rangeText(float64(lo), float64(hi)), i)
		return 0, false
	}
	return i, true
}

func (d *decoder) number(n *yaml.Node, path string, lo, hi float64) (float64, bool) {
	var f float64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" && n.Tag != "!!float" || n.Decode(&f) != nil ||
		math.IsNaN(f) || math.IsInf(f, 0) {
		d.errf(n, path, "must be a number, got %s", describe(n))
		return 0, false
	}
	if f < lo || f > hi {
		d.errf(n, path, "must be %s, got %v", rangeText(lo, hi), f)
		return 0, false
	}
	return f, true
}

// duration parses a duration no longer than hi; positive rejects zero.
func (d *decoder) duration(n *yaml.Node, path string, positive bool, hi time.Duration) (time.Duration, bool) {
	if _, ok := d.scalar(n, path, "a duration such as 250ms or 2s"); !ok {
		return 0, false
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		d.errf(n, path, "%v", err)
		return 0, false
	}
	if v > hi {
		d.errf(n, path, "%s is longer than the limit of %s", v, hi)
		return 0, false
	}
	if positive && v == 0 {
		d.errf(n, path, "must be above zero")
		return 0, false
	}
	return v, true
}

func (d *decoder) size(n *yaml.Node, path string, hi int64) (int64, bool) {
	if _, ok := d.scalar(n, path, "a size such as 4KiB or a number of bytes"); !ok {
		return 0, false
	}
	b, err := parseSize(n.Value)
	if err != nil {
		d.errf(n, path, "%v", err)
		return 0, false
	}
	if b > hi {
		d.errf(n, path, "%d bytes is more than the limit of %d", b, hi)
		return 0, false
	}
	return b, true
}

func (d *decoder) rate(n *yaml.Node, path string) (float64, bool) {
	if _, ok := d.scalar(n, path, "a rate such as 200/s"); !ok {
		return 0, false
	}
	r, err := parseRate(n.Value)
	if err != nil {
		d.errf(n, path, "%v", err)
		return 0, false
	}
	return r, true
}

func (d *decoder) fraction(n *yaml.Node, path string) (float64, bool) {
	if _, ok := d.scalar(n, path, "a percentage such as 15% or a fraction"); !ok {
		return 0, false
	}
	f, err := parseFraction(n.Value)
	if err != nil {
		d.errf(n, path, "%v", err)
		return 0, false
	}
	return f, true
}

// oneOf parses a string that must be one of the choices.
func (d *decoder) oneOf(n *yaml.Node, path string, choices ...string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	if !contains(choices, s) {
		msg := fmt.Sprintf("must be one of %s, got %q", strings.Join(choices, ", "), s)
		if c := closest(s, choices); c != "" {
			msg += fmt.Sprintf("; did you mean %s?", c)
		}
		d.errf(n, path, "%s", msg)
		return "", false
	}
	return s, true
}

// Mapping readers: the same, for the value of a key of o (absent: not ok, no problem).

func (o *obj) get(key string) (*yaml.Node, string, bool) {
	v := o.vals[key]
	return v, join(o.path, key), v != nil
}

func (o *obj) str(key string) (string, bool) {
	if v, path, ok := o.get(key); ok {
		return o.d.str(v, path)
	}
	return "", false
}

func (o *obj) boolean(key string) (bool, bool) {
	if v, path, ok := o.get(key); ok {
		return o.d.boolean(v, path)
	}
	return false, false
}

func (o *obj) number(key string, lo, hi float64) (float64, bool) {
	if v, path, ok := o.get(key); ok {
		return o.d.number(v, path, lo, hi)
	}
	return 0, false
}

func (o *obj) dur(key string, hi time.Duration) (time.Duration, bool) {
	if v, path, ok := o.get(key); ok {
		return o.d.duration(v, path, false, hi)
	}
	return 0, false
}

func (o *obj) positiveDur(key string, hi time.Duration) (time.Duration, bool) {
	if v, path, ok := o.get(key); ok {
		return o.d.duration(v, path, true, hi)
	}
	return 0, false
}

func (o *obj) size(key string, hi int64) (int64, bool) {
	if v, path, ok := o.get(key); ok {
		return o.d.size(v, path, hi)
	}
	return 0, false
}

func (o *obj) fraction(key string) (float64, bool) {
	if v, path, ok := o.get(key); ok {
		return o.d.fraction(v, path)
	}
	return 0, false
}

func (o *obj) oneOf(key string, choices ...string) (string, bool) {
	if v, path, ok := o.get(key); ok {
		return o.d.oneOf(v, path, choices...)
	}
	return "", false
}

func rangeText(lo, hi float64) string {
	switch {
	case hi >= math.MaxInt64/2 || math.IsInf(hi, 1):
		if lo == 0 {
			return "zero or more"
		}
		return "at least " + strconv.FormatFloat(lo, 'f', -1, 64)
	default:
		return fmt.Sprintf("between %s and %s", strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64))
	}
}

func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!str":
			return fmt.Sprintf("%q", v)
		}
		return v
	}
	return "a document"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// closest returns the candidate nearest to s if it is close enough to be a typo.
func closest(s string, candidates []string) string {
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, len(s)/3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortErrors orders errors by file position; --set errors come last.
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if (a.Set != "") != (b.Set != "") {
			return a.Set == ""
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}
