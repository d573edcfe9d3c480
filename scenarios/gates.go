package scenarios

import (
	"fmt"
	"slices"
	"strings"
)

// checkGateWhen holds every gate's when against the file's matrix (before a
// --set pins any key): a key must be a matrix key and its value one of the
// key's values, or the gate would silently never run.
func checkGateWhen(s *Scenario) Errors {
	var errs Errors
	for _, g := range s.Gates {
		keys := make([]string, 0, len(g.When))
		for k := range g.When {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			i := slices.IndexFunc(s.Matrix, func(a Axis) bool { return a.Key == k })
			if i < 0 {
				msg := fmt.Sprintf("gate %q: when: %s is not a matrix key, so the gate would never run; %s", g.Source, k, describeMatrix(s.Matrix))
				if c := closest(k, matrixKeys(s.Matrix)); c != "" {
					msg += fmt.Sprintf("; did you mean %s?", c)
				}
				errs = append(errs, &Error{Pos: g.whenPos[k], Msg: msg})
				continue
			}
			ax := s.Matrix[i]
			if !slices.ContainsFunc(ax.Values, func(v any) bool { return sameValue(v, g.When[k]) }) {
				errs = append(errs, &Error{Pos: g.whenPos[k], Msg: fmt.Sprintf("gate %q: when: %s is never %v, so the gate would never run; its values are %s",
					g.Source, k, g.When[k], formatValues(ax.Values))})
			}
		}
	}
	return errs
}

// GateApplies says whether g is evaluated for the variant with these matrix
// params. skip is set when the gate is evaluated in no variant of this run: a
// --set pinned a key of its when to another value. A pinned key with the
// gate's value counts as matching.
func (s *Scenario) GateApplies(g Gate, params map[string]any) (applies bool, skip string) {
	var skips []string
	for k, want := range g.When {
		if v, ok := params[k]; ok {
			if !sameValue(v, want) {
				return false, "" // another variant's gate
			}
			continue
		}
		if v, ok := s.Pinned[k]; ok {
			if !sameValue(v, want) {
				skips = append(skips, fmt.Sprintf("--set pinned %s to %v; the gate is for %v", k, v, want))
			}
			continue
		}
		skips = append(skips, fmt.Sprintf("%s is not a matrix key of this run", k))
	}
	if len(skips) > 0 {
		slices.Sort(skips)
		return false, strings.Join(skips, "; ")
	}
	return true, ""
}

// sameValue compares matrix values as written scalars: 10 and 10, "a" and a.
func sameValue(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func matrixKeys(axes []Axis) []string {
	out := make([]string, len(axes))
	for i, ax := range axes {
		out[i] = ax.Key
	}
	return out
}

// describeMatrix lists the matrix keys and their values for an error message.
func describeMatrix(axes []Axis) string {
	if len(axes) == 0 {
		return "the scenario has no matrix"
	}
	parts := make([]string, len(axes))
	for i, ax := range axes {
		parts[i] = ax.Key + ": " + formatValues(ax.Values)
	}
	return "the matrix has " + strings.Join(parts, ", ")
}

func formatValues(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
