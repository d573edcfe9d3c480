// Package gate parses and evaluates gate expressions such as
// "p99(end_to_end) < 2s" or "peak(worker_rss) < 200MiB": the pass/fail checks
// a scenario applies to every variant's result.
package gate

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the unit family of a metric; it decides which units its threshold may carry.
type Kind int

const (
	// Count is a plain number of things (jobs, messages, events); thresholds are bare numbers.
	Count Kind = iota
	// Duration is a time in seconds; thresholds need a duration unit (ns, us, µs, ms, s, m),
	// except for metrics whose name ends in _seconds, where a bare number is seconds.
	Duration
	// Size is a number of bytes; thresholds are bare bytes or carry a size unit
	// (B, KiB, MiB, GiB, KB, MB, GB).
	Size
	// Rate is a number per second; thresholds are bare numbers.
	Rate
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Count:
		return "count"
	case Duration:
		return "duration"
	case Size:
		return "size"
	case Rate:
		return "rate"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Expr is one parsed gate expression.
type Expr struct {
	Source string  // the expression as written
	Metric string  // canonical metric name, e.g. "p99(end_to_end)" or "complete_per_s"
	Op     string  // one of == != < <= > >=
	Value  float64 // the threshold in the metric's base unit: seconds, bytes, or a plain number
	Kind   Kind
}

// SyntaxError is a problem in a gate expression, at a 1-based column
// (counted in characters) of the expression.
type SyntaxError struct {
	Col int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.Col, e.Msg) }

// Catalog is the set of metrics an expression may name; the report package
// keeps the table.
type Catalog interface {
	// Resolve returns a metric's canonical name and kind; ok is false for an
	// unknown name.
	Resolve(name string) (canonical string, k Kind, ok bool)
	// Names lists every accepted name, for suggestions.
	Names() []string
}

// resolve returns the canonical name and kind of a metric, or a message
// saying why it is unknown.
func resolve(cat Catalog, name string) (string, Kind, string) {
	if c, k, ok := cat.Resolve(name); ok {
		return c, k, ""
	}
	// fn(arg): list the arguments fn takes.
	if fn, _, isCall := strings.Cut(name, "("); isCall {
		var same []string
		for _, n := range cat.Names() {
			if strings.HasPrefix(n, fn+"(") {
				same = append(same, n)
			}
		}
		if len(same) > 0 {
			return "", 0, fmt.Sprintf("unknown metric %s; want one of %s", name, strings.Join(same, ", "))
		}
	}
	msg := fmt.Sprintf("unknown metric %s", name)
	if s := suggest(cat, name); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return "", 0, msg
}

// suggest returns the known metric closest to name, if it is close enough to be a typo.
func suggest(cat Catalog, name string) string {
	best, bestD := "", math.MaxInt
	for _, m := range cat.Names() {
		if d := distance(name, m); d < bestD {
			best, bestD = m, d
		}
	}
	if bestD <= max(2, utf8.RuneCountInString(name)/3) {
		return best
	}
	return ""
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

var durationUnits = map[string]float64{
	"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
}

var sizeUnits = map[string]float64{
	"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9,
}

// Parse parses a gate expression: a metric of cat, an operator (== != < <= >
// >=) and a number with an optional unit that must fit the metric's kind.
func Parse(s string, cat Catalog) (*Expr, error) {
	p := &parser{src: []rune(s)}
	e := &Expr{Source: s}

	p.space()
	start := p.i
	for p.i < len(p.src) && isNameRune(p.src[p.i]) {
		p.i++
	}
	if p.i == start {
		return nil, p.errAt(start, "expected a metric name")
	}
	if p.i < len(p.src) && p.src[p.i] == '(' {
		p.i++
		for p.i < len(p.src) && p.src[p.i] != ')' {
			p.i++
		}
		if p.i == len(p.src) {
			return nil, p.errAt(p.i, "missing ) after metric argument")
		}
		p.i++
	}
	name := strings.ReplaceAll(string(p.src[start:p.i]), " ", "")
	metric, kind, msg := resolve(cat, name)
	if msg != "" {
		return nil, p.errAt(start, msg)
	}
	e.Metric, e.Kind = metric, kind

	p.space()
	opStart := p.i
	for p.i < len(p.src) && strings.ContainsRune("=!<>", p.src[p.i]) {
		p.i++
	}
	e.Op = string(p.src[opStart:p.i])
	switch e.Op {
	case "==", "!=", "<", "<=", ">", ">=":
	case "":
		return nil, p.errAt(opStart, "expected an operator (== != < <= > >=)")
	default:
		return nil, p.errAt(opStart, fmt.Sprintf("unknown operator %q; want one of == != < <= > >=", e.Op))
	}

	p.space()
	numStart := p.i
	for p.i < len(p.src) && strings.ContainsRune("+-0123456789.eE", p.src[p.i]) {
		// An 'e' only belongs to the number when an exponent follows; otherwise it starts a unit.
		if r := p.src[p.i]; (r == 'e' || r == 'E') && !p.exponentAt(p.i) {
			break
		}
		p.i++
	}
	numText := string(p.src[numStart:p.i])
	if numText == "" {
		return nil, p.errAt(numStart, "expected a number")
	}
	v, err := strconv.ParseFloat(numText, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return nil, p.errAt(numStart, fmt.Sprintf("bad number %q", numText))
	}
	unitStart := p.i
	for p.i < len(p.src) && !isSpace(p.src[p.i]) {
		p.i++
	}
	unit := string(p.src[unitStart:p.i])
	p.space()
	if p.i < len(p.src) {
		return nil, p.errAt(p.i, fmt.Sprintf("unexpected %q after the threshold", string(p.src[p.i:])))
	}
	e.Value, err = scale(metric, kind, v, unit)
	if err != nil {
		col := unitStart
		if unit == "" {
			col = numStart
		}
		return nil, p.errAt(col, err.Error())
	}
	return e, nil
}

// scale converts a threshold to the metric's base unit.
func scale(metric string, kind Kind, v float64, unit string) (float64, error) {
	switch kind {
	case Duration:
		if unit == "" {
			if v == 0 || strings.HasSuffix(metric, "_seconds") {
				return v, nil
			}
			return 0, fmt.Errorf("%s is a duration: the threshold needs a unit (ns, us, ms, s, m)", metric)
		}
		if f, ok := durationUnits[unit]; ok {
			return v * f, nil
		}
		return 0, fmt.Errorf("%s is a duration: unit %q is not one of ns, us, ms, s, m", metric, unit)
	case Size:
		if unit == "" {
			return v, nil
		}
		if f, ok := sizeUnits[unit]; ok {
			return v * f, nil
		}
		return 0, fmt.Errorf("%s is a size: unit %q is not one of B, KiB, MiB, GiB, KB, MB, GB", metric, unit)
	default:
		if unit != "" {
			return 0, fmt.Errorf("%s is a %s: the threshold is a bare number, not %q", metric, kind, unit)
		}
		return v, nil
	}
}

type parser struct {
	src []rune
	i   int
}

func (p *parser) space() {
	for p.i < len(p.src) && isSpace(p.src[p.i]) {
		p.i++
	}
}

func (p *parser) exponentAt(i int) bool {
	j := i + 1
	if j < len(p.src) && (p.src[j] == '+' || p.src[j] == '-') {
		j++
	}
	return j < len(p.src) && p.src[j] >= '0' && p.src[j] <= '9'
}

func (p *parser) errAt(i int, msg string) error { return &SyntaxError{Col: i + 1, Msg: msg} }

func isSpace(r rune) bool { return r == ' ' || r == '\t' }

func isNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.'
}

// ErrMissing is returned by Eval (wrapped) when the lookup has no value for the metric.
var ErrMissing = errors.New("metric not measured")

// Eval looks the metric up and compares it with the threshold. value is in the
// metric's base unit (seconds for durations, bytes for sizes).
func (e *Expr) Eval(lookup func(metric string) (float64, bool)) (passed bool, value float64, err error) {
	v, ok := lookup(e.Metric)
	if !ok {
		return false, 0, fmt.Errorf("evaluate %q: %s: %w", e.Source, e.Metric, ErrMissing)
	}
	switch e.Op {
	case "==":
		passed = v == e.Value
	case "!=":
		passed = v != e.Value
	case "<":
		passed = v < e.Value
	case "<=":
		passed = v <= e.Value
	case ">":
		passed = v > e.Value
	case ">=":
		passed = v >= e.Value
	default:
		return false, v, fmt.Errorf("evaluate %q: unknown operator %q", e.Source, e.Op)
	}
	return passed, v, nil
}

// String returns the expression as written.
func (e *Expr) String() string { return e.Source }

// FormatValue renders a value of the expression's metric for people: durations
// with a unit, sizes in binary units, others as plain numbers.
func (e *Expr) FormatValue(v float64) string {
	switch e.Kind {
	case Duration:
		switch a := math.Abs(v); {
		case a == 0:
			return "0s"
		case a < 1e-3:
			return strconv.FormatFloat(v*1e6, 'f', -1, 64) + "µs"
		case a < 1:
			return strconv.FormatFloat(math.Round(v*1e6)/1e3, 'f', -1, 64) + "ms"
		default:
			return strconv.FormatFloat(math.Round(v*1e3)/1e3, 'f', -1, 64) + "s"
		}
	case Size:
		for _, u := range []struct {
			name string
			f    float64
		}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
			if math.Abs(v) >= u.f {
				return strconv.FormatFloat(math.Round(v/u.f*10)/10, 'f', -1, 64) + u.name
			}
		}
		return strconv.FormatFloat(v, 'f', -1, 64) + "B"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
