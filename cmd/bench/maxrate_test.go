package main

import (
	"bytes"
	"testing"
)

// --max-rate reaches the runner's options; without it a scenario with no
// search key runs its load.
func TestRunMaxRateFlag(t *testing.T) {
	var out, errb bytes.Buffer
	s := stdio{out: &out, err: &errb}
	ra, code := parseRun([]string{"../../scenarios/capacity.yaml", "--max-rate"}, s)
	if code >= 0 || !ra.maxRate {
		t.Fatalf("code %d maxRate %v: %s", code, ra.maxRate, errb.String())
	}
	ra, code = parseRun([]string{"../../scenarios/capacity.yaml"}, s)
	if code >= 0 || ra.maxRate || ra.sc.Search.Enabled() {
		t.Fatalf("code %d maxRate %v search %v", code, ra.maxRate, ra.sc.Search.Enabled())
	}
}
