package scenarios

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeMatrix decodes the axes; their values are checked when the variants are built.
func decodeMatrix(d *decoder, n *yaml.Node, _ string, s *Scenario) {
	o := d.object(n, "matrix")
	if o == nil {
		return
	}
	var axes []Axis
	combos := 1
	for i := 0; i+1 < len(o.n.Content); i += 2 {
		k, v := deref(o.n.Content[i]), deref(o.n.Content[i+1])
		if k == nil || o.keys[k.Value] != k {
			continue // reported by object
		}
		path := "matrix." + k.Value
		if k.Value == "name" || k.Value == "matrix" || strings.HasPrefix(k.Value, "matrix.") {
			d.errf(k, "matrix", "%s cannot vary", k.Value)
			continue
		}
		if _, err := splitPath(k.Value); err != nil {
			d.errf(k, "matrix", "%v", err)
			continue
		}
		if v == nil || v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			d.errf(v, path, "must be a non-empty list of values, got %s", describe(v))
			continue
		}
		if len(v.Content) > maxAxes {
			d.errf(v, path, "has %d values, more than the limit of %d", len(v.Content), maxAxes)
			continue
		}
		ax := Axis{Key: k.Value, Pos: d.pos(k)}
		for _, item := range v.Content {
			var val any
			if err := item.Decode(&val); err != nil {
				d.errf(item, path, "bad value: %v", err)
				val = nil
			}
			ax.Values = append(ax.Values, val)
			ax.nodes = append(ax.nodes, item)
		}
		if combos *= len(ax.Values); combos > maxVariants {
			d.errf(k, "matrix", "has %d combinations or more, more than the limit of %d", combos, maxVariants)
			return
		}
		axes = append(axes, ax)
	}
	s.Matrix = axes
}

// expand decodes every combination of the matrix into its own scenario. It
// returns the errors that the base scenario did not already show.
func expand(base *Scenario, seen map[string]bool) ([]Variant, Errors) {
	if len(base.Matrix) == 0 {
		v := Variant{Name: "default", Params: map[string]any{}, ParamOrder: []string{}, Scenario: base}
		base.variants = []Variant{v}
		return base.variants, nil
	}
	var (
		out   []Variant
		errs  Errors
		idx   = make([]int, len(base.Matrix))
		names = map[string]int{}
	)
	for {
		org := origins{}
		root := clone(base.root, base.origin, org)
		deleteKey(root, "matrix")
		var setErrs Errors
		for i, ax := range base.Matrix {
			val := clone(ax.nodes[idx[i]], base.origin, org)
			if err := setPath(root, ax.Key, val, ax.Pos, org); err != nil {
				setErrs = append(setErrs, &Error{Pos: ax.Pos, Msg: fmt.Sprintf("matrix: %v", err)})
			}
		}
		name := variantName(base.Matrix, idx)
		if n := names[name]; n > 0 {
			name += "-" + strconv.Itoa(n+1)
		}
		names[name]++

		d := &decoder{file: base.File, origin: org}
		s := d.decode(root)
		for _, e := range append(setErrs, d.errs...) {
			if key := e.Error(); !seen[key] {
				seen[key] = true
				errs = append(errs, &Error{Pos: e.Pos, Msg: e.Msg + " (in matrix variant " + name + ")"})
			}
		}
		s.File, s.SHA256, s.Source, s.root, s.origin = base.File, base.SHA256, base.Source, root, org
		s.Overrides, s.Effective, s.EffectiveSHA256, s.Pinned = base.Overrides, base.Effective, base.EffectiveSHA256, base.Pinned
		v := Variant{Name: name, Params: map[string]any{}, Scenario: s}
		for i, ax := range base.Matrix {
			v.Params[ax.Key] = ax.Values[idx[i]]
			v.ParamOrder = append(v.ParamOrder, ax.Key)
		}
		s.variants = []Variant{v}
		out = append(out, v)

		// Odometer: the last key varies fastest.
		i := len(idx) - 1
		for ; i >= 0; i-- {
			if idx[i]++; idx[i] < len(base.Matrix[i].Values) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			break
		}
	}
	base.variants = out
	return out, errs
}

// variantName is stable and safe in a file name: "workers.prefetch=0" for one
// key, "prefetch=0,concurrency=8" (last key segments) for several.
func variantName(axes []Axis, idx []int) string {
	labels := make([]string, len(axes))
	short := len(axes) > 1
	seen := map[string]bool{}
	for i, ax := range axes {
		segs := strings.Split(ax.Key, ".")
		labels[i] = segs[len(segs)-1]
		if seen[labels[i]] {
			short = false
		}
		seen[labels[i]] = true
	}
	parts := make([]string, len(axes))
	for i, ax := range axes {
		label := ax.Key
		if short {
			label = labels[i]
		}
		n := ax.nodes[idx[i]]
		val := "v" + strconv.Itoa(idx[i]+1)
		if dn := deref(n); dn != nil && dn.Kind == yaml.ScalarNode && dn.Value != "" {
			val = dn.Value
		}
		parts[i] = sanitize(label) + "=" + sanitize(val)
	}
	return strings.Join(parts, ",")
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if len(b.String()) > 64 {
		return b.String()[:64]
	}
	return b.String()
}
