package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benchmq/bench/report/gate"
)

// A skipped gate is <skipped/> in junit.xml, with its reason, never a pass;
// an aborted variant is a failed "abort" case.
func TestJUnitSkippedAndAborted(t *testing.T) {
	r := syntheticResult(t)
	r.Variants[0].Gates = append(r.Variants[0].Gates, Gate{Expr: "peak(worker_rss) < 64MiB", Skipped: true, Reason: "--set pinned workers.prefetch to 50; the gate is for 10"})
	r.Variants[1].Aborted = &Abort{Gate: "p99(end_to_end) < 2s", Reason: "abort gate failed"}
	var b bytes.Buffer
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Skipped int `xml:"skipped,attr"`
		Suites  []struct {
			Skipped  int `xml:"skipped,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s0 := doc.Suites[0]
	last := s0.Cases[len(s0.Cases)-1]
	if doc.Skipped != 1 || s0.Skipped != 1 || last.Skipped == nil || last.Failure != nil || last.Skipped.Message != "--set pinned workers.prefetch to 50; the gate is for 10" {
		t.Errorf("skipped gate: %+v\n%s", s0, b.String())
	}
	s1 := doc.Suites[1]
	if s1.Cases[0].Name != "abort" || s1.Cases[0].Failure == nil || s1.Failures != 2 {
		t.Errorf("aborted variant: %+v", s1)
	}
	var h bytes.Buffer
	if err := RenderHTML(&h, r, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"skipped: --set pinned workers.prefetch to 50", "was aborted: abort gate failed"} {
		if !strings.Contains(h.String(), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// recovery_seconds and detect_seconds are null with a note when not reached;
// an older result's -1 reads the same way.
func TestFaultFiguresNull(t *testing.T) {
	r := syntheticResult(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "result.json")
	if err := WriteFile(path, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Variants []struct {
			Faults []map[string]any `json:"faults"`
		} `json:"variants"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	kill := raw.Variants[0].Faults[1]
	if v, present := kill["recovery_seconds"]; !present || v != nil || kill["detect_seconds"] != nil ||
		!strings.HasPrefix(kill["recovery_note"].(string), "the completion rate was not back") {
		t.Errorf("result.json fault not reached: %v", kill)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f := back.Variants[0].Faults; f[0].RecoverySeconds == nil || *f[0].RecoverySeconds != 3.2 || f[1].RecoverySeconds != nil || f[1].DetectSeconds != nil {
		t.Errorf("read back: %+v", f)
	}

	old := `{"at_s": 40, "until_s": 40, "target": "broker", "kind": "kill", "recovery_seconds": -1, "detect_seconds": -1}`
	var f Fault
	if err := json.Unmarshal([]byte(old), &f); err != nil {
		t.Fatal(err)
	}
	if f.RecoverySeconds != nil || f.DetectSeconds != nil || !strings.Contains(f.RecoveryNote, "older bench") || !strings.Contains(f.DetectNote, "older bench") {
		t.Errorf("an older -1: %+v", f)
	}
	zero := `{"recovery_seconds": 0, "detect_seconds": 0}`
	if err := json.Unmarshal([]byte(zero), &f); err != nil || f.RecoverySeconds == nil || *f.RecoverySeconds != 0 || f.DetectSeconds == nil {
		t.Errorf("a measured 0 is kept: %+v %v", f, err)
	}

	var h bytes.Buffer
	if err := RenderHTML(&h, r, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.String(), `n/a <small class="na">the completion rate was not back`) || strings.Contains(h.String(), "-1.00 s") {
		t.Error("report.html does not show the null recovery as n/a with its reason")
	}
}

func TestAbortGates(t *testing.T) {
	parse := func(s string) *gate.Expr {
		e, err := gate.Parse(s, Catalog)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	v := &Variant{Ledger: Ledger{Duplicates: 2, Succeeded: 50}, LatencyMS: Latencies{EndToEnd: Summary{Count: AbortMinSamples, P99: 2500, Max: 4000}}, Peak: Peak{WorkerRSSBytes: 300 << 20}}
	for _, tc := range []struct {
		expr         string
		check        string // CheckAbort's error, "" when accepted
		failed       bool
		fewerSamples bool // the same with too few latency samples
	}{
		{"p99(end_to_end) < 2s", "", true, false},
		{"p99(end_to_end) < 3s", "", false, false},
		{"max(end_to_end) < 1s", "", true, true},
		{"peak(worker_rss) < 200MiB", "", true, true},
		{"duplicates == 0", "", true, true},
		{"succeeded == 100", "", false, false}, // below the value: it may yet get there
		{"succeeded == 10", "", true, true},    // beyond it: it cannot come back
		{"lost == 0", "known only when the variant ends", false, false},
		{"complete_per_s > 100", "known only when the variant ends", false, false},
		{"succeeded >= 100", "only grows", false, false},
		{"p99(end_to_end) != 2s", "moves either way", false, false},
	} {
		e := parse(tc.expr)
		err := CheckAbort(e)
		if (err == nil) != (tc.check == "") || err != nil && !strings.Contains(err.Error(), tc.check) {
			t.Errorf("CheckAbort(%s) = %v, want %q", tc.expr, err, tc.check)
			continue
		}
		if err != nil {
			continue
		}
		if failed, _ := AbortFails(e, v); failed != tc.failed {
			t.Errorf("AbortFails(%s) = %v", tc.expr, failed)
		}
		few := *v
		few.LatencyMS.EndToEnd.Count = AbortMinSamples - 1
		if failed, _ := AbortFails(e, &few); failed != tc.fewerSamples {
			t.Errorf("AbortFails(%s) with %d samples = %v", tc.expr, few.LatencyMS.EndToEnd.Count, failed)
		}
	}
}
