package scenarios

import (
	"slices"
	"strings"
	"testing"
)

func TestBaselineGateAlphaAB(t *testing.T) {
	doc := base + "matrix: {workers.prefetch: [1, 10]}\nbaseline: {gate: [p99(end_to_end), p99_ms], alpha: 0.01, ab: workers.prefetch}\n"
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Baseline
	if !slices.Equal(b.Gate, []string{"p99(end_to_end)", "p99_ms"}) || b.Alpha != 0.01 || b.AB != "workers.prefetch" {
		t.Errorf("Baseline = %+v", b)
	}
}

func TestBaselineErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  string
		sets []string
		want string
	}{
		{"gate on a metric never compared", base + "baseline: {gate: [published]}\n", nil,
			"5:19: baseline.gate.0: published is not a compared metric; want one of retries,"},
		{"gate not a list", base + "baseline: {gate: p99_ms}\n", nil, "5:18: baseline.gate: must be a list"},
		{"alpha of zero", base + "baseline: {alpha: 0}\n", nil, "5:19: baseline.alpha: must be above 0"},
		{"alpha too large", base + "baseline: {alpha: 0.9}\n", nil, "5:19: baseline.alpha: must be between 0 and 0.5"},
		{"ab without a matrix", base + "baseline: {ab: workers.prefetch}\n", nil, "5:16: baseline.ab: workers.prefetch is not a matrix key"},
		{"ab on another key", base + "matrix: {workers.prefetch: [1, 10]}\nbaseline: {ab: workers.prefech}\n", nil,
			"6:16: baseline.ab: workers.prefech is not a matrix key (matrix keys: workers.prefetch;"},
		{"ab on three values", base + "matrix: {workers.prefetch: [1, 10, 100]}\nbaseline: {ab: workers.prefetch}\n", nil,
			"6:16: baseline.ab: matrix key workers.prefetch has 3 values; an A/B comparison needs exactly two"},
		{"ab on a key pinned by --set", base + "matrix: {workers.prefetch: [1, 10]}\nbaseline: {ab: workers.prefetch}\n", []string{"workers.prefetch=5"},
			"baseline.ab: workers.prefetch is not a matrix key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(c.doc), c.sets)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v\nwant %q", err, c.want)
			}
		})
	}
}
