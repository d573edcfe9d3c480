package scenarios

import (
	"maps"
	"reflect"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// A scenario key is declared once, in keys.go, as a field: its name, default
// and meaning, how its value is read and checked, and where it goes. The
// decoder, the JSON Schema (`bench schema`) and the documentation test all
// read that one table.

// meta is what every key has.
type meta struct {
	Name     string
	Default  string // as written in the file; "" when there is none
	Doc      string
	Required bool
}

func (m meta) key() meta { return m }

func (m meta) paths(prefix string) []string { return []string{prefix + m.Name} }

// field is one key of a mapping whose decoded form is a T.
type field[T any] interface {
	key() meta
	// decode reads n (not null) at path into t, recording every problem in d.
	decode(d *decoder, n *yaml.Node, path string, t *T)
	// schema is the key's value in JSON Schema, without its description;
	// def holds the defaults.
	schema(def *T) map[string]any
	// paths lists the dotted paths of the key's leaves: itself, or the keys under it.
	paths(prefix string) []string
}

// scalar is a key holding one value that parse reads.
type scalar[T, V any] struct {
	meta
	at    func(*T) *V
	parse func(d *decoder, n *yaml.Node, path string) (V, bool)
	js    map[string]any
}

func (f scalar[T, V]) decode(d *decoder, n *yaml.Node, path string, t *T) {
	if v, ok := f.parse(d, n, path); ok {
		*f.at(t) = v
	}
}

func (f scalar[T, V]) schema(def *T) map[string]any {
	js := maps.Clone(f.js)
	if v := *f.at(def); !f.Required && !reflect.ValueOf(v).IsZero() {
		js["default"] = defaultValue(v)
	}
	return js
}

// object is a key holding a mapping of its own fields.
type object[T, U any] struct {
	meta
	at     func(*T) *U
	fields []field[U]
	// check applies rules between the mapping's keys, after they are decoded.
	check func(d *decoder, o *obj, u *U)
}

func (f object[T, U]) decode(d *decoder, n *yaml.Node, path string, t *T) {
	decodeFields(d, n, path, f.fields, f.at(t), f.check)
}

func (f object[T, U]) paths(prefix string) []string {
	var out []string
	for _, c := range f.fields {
		out = append(out, c.paths(prefix+f.Name+".")...)
	}
	return out
}

func (f object[T, U]) schema(def *T) map[string]any { return objectSchema(f.fields, f.at(def)) }

// custom is a key whose value has a shape of its own (a list of phases, a
// distribution written two ways, the matrix).
type custom[T any] struct {
	meta
	dec func(d *decoder, n *yaml.Node, path string, t *T)
	js  func() map[string]any
}

func (f custom[T]) decode(d *decoder, n *yaml.Node, path string, t *T) { f.dec(d, n, path, t) }
func (f custom[T]) schema(*T) map[string]any                           { return f.js() }

// decodeFields reads the mapping n into u: only the fields' keys are allowed,
// required ones must be there, each present one is decoded, then check runs.
// It returns the mapping (nil when n is not one).
func decodeFields[U any](d *decoder, n *yaml.Node, path string, fields []field[U], u *U, check func(*decoder, *obj, *U)) *obj {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key().Name
	}
	o := d.object(n, path, names...)
	if o == nil {
		return nil
	}
	for _, f := range fields {
		m := f.key()
		if v := o.vals[m.Name]; v != nil {
			f.decode(d, v, join(path, m.Name), u)
		} else if m.Required {
			o.require(m.Name)
		}
	}
	if check != nil {
		check(d, o, u)
	}
	return o
}

// The constructors below keep keys.go one line per key.

func durKey[T any](m meta, positive bool, at func(*T) *time.Duration) field[T] {
	return scalar[T, time.Duration]{meta: m, at: at, js: durationSchema,
		parse: func(d *decoder, n *yaml.Node, path string) (time.Duration, bool) {
			return d.duration(n, path, positive, maxDuration)
		}}
}

func intKey[T any, V ~int | ~int64](m meta, lo, hi int64, at func(*T) *V) field[T] {
	return scalar[T, V]{meta: m, at: at, js: map[string]any{"type": "integer", "minimum": lo, "maximum": hi},
		parse: func(d *decoder, n *yaml.Node, path string) (V, bool) {
			v, ok := d.integer(n, path, lo, hi)
			return V(v), ok
		}}
}

// numKey reads a number in [lo, hi], or (lo, hi] when aboveLo.
func numKey[T any](m meta, lo, hi float64, aboveLo bool, at func(*T) *float64) field[T] {
	js := map[string]any{"type": "number", "minimum": lo, "maximum": hi}
	if aboveLo {
		js = map[string]any{"type": "number", "exclusiveMinimum": lo, "maximum": hi}
	}
	return scalar[T, float64]{meta: m, at: at, js: js,
		parse: func(d *decoder, n *yaml.Node, path string) (float64, bool) {
			v, ok := d.number(n, path, lo, hi)
			if ok && aboveLo && v == lo {
				d.errf(n, path, "must be above %v", lo)
				return 0, false
			}
			return v, ok
		}}
}

func boolKey[T any](m meta, at func(*T) *bool) field[T] {
	return scalar[T, bool]{meta: m, at: at, js: map[string]any{"type": "boolean"}, parse: (*decoder).boolean}
}

// strKey reads a string; check, if set, says what is wrong with it.
func strKey[T any](m meta, check func(string) error, at func(*T) *string) field[T] {
	return scalar[T, string]{meta: m, at: at, js: map[string]any{"type": "string"},
		parse: func(d *decoder, n *yaml.Node, path string) (string, bool) {
			v, ok := d.str(n, path)
			if ok && check != nil {
				if err := check(v); err != nil {
					d.errf(n, path, "%v", err)
				}
			}
			return v, ok
		}}
}

// patternKey reads a string matching re (anchored), described as want.
func patternKey[T any](m meta, re *regexp.Regexp, want string, at func(*T) *string) field[T] {
	return scalar[T, string]{meta: m, at: at, js: map[string]any{"type": "string", "pattern": re.String()},
		parse: func(d *decoder, n *yaml.Node, path string) (string, bool) {
			v, ok := d.str(n, path)
			if ok && !re.MatchString(v) {
				d.errf(n, path, "%q must match %s", v, want)
			}
			return v, ok
		}}
}

func enumKey[T any, V ~string](m meta, choices []string, at func(*T) *V) field[T] {
	enum := make([]any, len(choices))
	for i, c := range choices {
		enum[i] = c
	}
	return scalar[T, V]{meta: m, at: at, js: map[string]any{"enum": enum},
		parse: func(d *decoder, n *yaml.Node, path string) (V, bool) {
			v, ok := d.oneOf(n, path, choices...)
			return V(v), ok
		}}
}

func sizeKey[T any, V ~int | ~int64](m meta, hi int64, at func(*T) *V) field[T] {
	return scalar[T, V]{meta: m, at: at, js: sizeSchema,
		parse: func(d *decoder, n *yaml.Node, path string) (V, bool) {
			v, ok := d.size(n, path, hi)
			return V(v), ok
		}}
}

// rateKey reads jobs per second ("200/s"); positive rejects zero.
func rateKey[T any](m meta, positive bool, at func(*T) *float64) field[T] {
	return scalar[T, float64]{meta: m, at: at, js: rateSchema,
		parse: func(d *decoder, n *yaml.Node, path string) (float64, bool) {
			v, ok := d.rate(n, path)
			if ok && positive && v == 0 {
				d.errf(n, path, "must be above zero")
				return 0, false
			}
			return v, ok
		}}
}

func fractionKey[T any](m meta, at func(*T) *float64) field[T] {
	return scalar[T, float64]{meta: m, at: at, js: fractionSchema, parse: (*decoder).fraction}
}

func objKey[T, U any](m meta, at func(*T) *U, fields []field[U], check func(*decoder, *obj, *U)) field[T] {
	return object[T, U]{meta: m, at: at, fields: fields, check: check}
}

func customKey[T any](m meta, js func() map[string]any, dec func(d *decoder, n *yaml.Node, path string, t *T)) field[T] {
	return custom[T]{meta: m, dec: dec, js: js}
}
