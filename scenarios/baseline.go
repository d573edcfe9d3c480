package scenarios

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/report"
)

// decodeGateList reads baseline.gate: compared metrics, by name or alias.
func decodeGateList(d *decoder, n *yaml.Node, path string, b *Baseline) {
	for i, item := range d.list(n, path, 100) {
		ipath := path + "." + strconv.Itoa(i)
		name, ok := d.str(item, ipath)
		if !ok {
			continue
		}
		if m, known := report.LookupMetric(name); !known || !m.Compare {
			d.errf(item, ipath, "%s is not a compared metric; want one of %s", name, strings.Join(report.CompareMetrics(), ", "))
			continue
		}
		b.Gate = append(b.Gate, name)
	}
}

func gateListSchema() map[string]any {
	return map[string]any{"type": "array", "items": map[string]any{"enum": comparedNames()}}
}

// decodeAB reads baseline.ab; checkAB judges it once the matrix is known.
func decodeAB(d *decoder, n *yaml.Node, path string, b *Baseline) {
	if v, ok := d.str(n, path); ok {
		b.AB, b.abPos = v, d.pos(n)
	}
}

// checkAB: an A/B comparison needs a matrix key with exactly two values (a
// --set of that key pins it to one).
func checkAB(s *Scenario) *Error {
	if s.Baseline.AB == "" {
		return nil
	}
	var keys []string
	for _, ax := range s.Matrix {
		if ax.Key == s.Baseline.AB {
			if len(ax.Values) != 2 {
				return &Error{Pos: s.Baseline.abPos, Msg: "baseline.ab: matrix key " + ax.Key + " has " + strconv.Itoa(len(ax.Values)) + " values; an A/B comparison needs exactly two"}
			}
			return nil
		}
		keys = append(keys, ax.Key)
	}
	msg := "baseline.ab: " + s.Baseline.AB + " is not a matrix key"
	if len(keys) > 0 {
		msg += " (matrix keys: " + strings.Join(keys, ", ") + "; a --set of a matrix key pins it)"
	}
	return &Error{Pos: s.Baseline.abPos, Msg: msg}
}
