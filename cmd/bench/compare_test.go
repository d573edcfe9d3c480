package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benchmq/bench/report"
)

// result is a plausible single-run result whose end-to-end p99 is p99 ms.
func result(p99 float64) *report.Result {
	e2e := report.Summary{Count: 5000, Mean: 50, P50: 40, P90: p99 / 2, P99: p99, P999: 1.5 * p99, Max: 2 * p99}
	return &report.Result{
		SchemaVersion: report.SchemaVersion,
		Passed:        true,
		Scenario:      report.Scenario{Name: "spike", Description: "<b>x</b>"},
		Variants: []report.Variant{{
			Name:         "prefetch=10",
			Params:       map[string]any{"workers.prefetch": 10},
			Passed:       true,
			Ledger:       report.Ledger{Published: 5000, Confirmed: 5000, Succeeded: 5000},
			LatencyMS:    report.Latencies{EndToEnd: e2e, Processing: report.Summary{Count: 5000, Mean: 5, P50: 4, P90: 8, P99: 12, P999: 20, Max: 30}},
			Throughput:   report.Throughput{PublishPerS: 900, CompletePerS: 880},
			DrainSeconds: 5,
			Peak:         report.Peak{WorkerRSSBytes: 50 << 20},
		}},
	}
}

func writeResult(t *testing.T, dir, name string, p99 float64) string {
	t.Helper()
	return write(t, dir, name, result(p99))
}

func write(t *testing.T, dir, name string, r *report.Result) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := report.WriteFile(path, r); err != nil {
		t.Fatal(err)
	}
	return path
}

// repeatedResult combines five runs whose processing time is scaled by k.
func repeatedResult(k float64) *report.Result {
	var rs []*report.Result
	for i := range 5 {
		r := result(200)
		p := &r.Variants[0].LatencyMS.Processing
		f := k * (1 + 0.01*float64(i))
		p.Mean, p.P50, p.P90, p.P99, p.P999, p.Max = p.Mean*f, p.P50*f, p.P90*f, p.P99*f, p.P999*f, p.Max*f
		rs = append(rs, r)
	}
	return report.Combine(rs)
}

func TestCompareExitCodes(t *testing.T) {
	dir := t.TempDir()
	base := writeResult(t, dir, "base.json", 200)
	same := writeResult(t, dir, "same.json", 200)
	worse := writeResult(t, dir, "worse.json", 400)
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	rbase := write(t, dir, "rbase.json", repeatedResult(1))
	rsame := write(t, dir, "rsame.json", repeatedResult(1.02))
	rslow := write(t, dir, "rslow.json", repeatedResult(1.4))
	// Issue 13, item 4: broken runs.
	lost := result(200)
	lost.Variants[0].Ledger.Lost, lost.Variants[0].Ledger.Succeeded = 500, 4500
	broken := result(200)
	broken.Passed, broken.Interrupted = false, true
	dups := result(200)
	dups.Variants[0].Ledger.Duplicates = 77
	other := result(200)
	other.Scenario.Name = "steady"
	negative := result(200)
	negative.Variants[0].LatencyMS.EndToEnd = report.Summary{Count: 5000, Mean: 1, P50: -1, P90: -1, P99: -1, P999: -1, Max: 1}
	for _, tc := range []struct {
		name string
		args []string
		want int
		out  string
	}{
		{"same", []string{base, same}, exitOK, "no regression"},
		{"p99 doubled: end-to-end is reported, not gated", []string{base, worse}, exitOK, "reported, not gated"},
		{"p99 doubled, gated, one run each: inconclusive", []string{base, worse, "--gate", "p99(end_to_end)"}, exitOK, "inconclusive — more repeats needed"},
		{"processing 40 % slower, five runs each", []string{rbase, rslow}, exitGate, "REGRESSION in prefetch=10 p50(processing)"},
		{"processing 40 % slower, loose limit", []string{rbase, rslow, "--max-regression", "60%"}, exitOK, "no regression"},
		{"processing 40 % slower, loose thresholds", []string{rbase, rslow, "--threshold", "p50(processing)=60%", "--threshold", "p90(processing)=60", "--threshold", "p99(processing)=60%"}, exitOK, "no regression"},
		{"five runs each, unchanged", []string{rbase, rsame}, exitOK, "no regression"},
		{"lost 500", []string{base, write(t, dir, "lost.json", lost)}, exitGate, "FAILED: variant prefetch=10: lost 500, the baseline at most 0"},
		{"failed and interrupted", []string{base, write(t, dir, "broken.json", broken)}, exitGate, "FAILED: the new run was interrupted"},
		{"77 duplicates", []string{base, write(t, dir, "dups.json", dups)}, exitGate, "duplicates 77"},
		{"another scenario", []string{base, write(t, dir, "other.json", other)}, exitInput, ""},
		{"p99 of -1 ms", []string{base, write(t, dir, "negative.json", negative)}, exitInput, ""},
		{"missing file", []string{base, filepath.Join(dir, "nope.json")}, exitInput, ""},
		{"unparsable file", []string{base, garbage}, exitInput, ""},
		{"one file", []string{base}, exitInput, ""},
		{"bad percent", []string{base, same, "--max-regression", "lots"}, exitInput, ""},
		{"unknown metric", []string{base, same, "--threshold", "p42=10%"}, exitInput, ""},
		{"gate on a metric never compared", []string{base, same, "--gate", "published"}, exitInput, ""},
		{"bad alpha", []string{base, same, "--alpha", "1.5"}, exitInput, ""},
		{"unknown flag", []string{base, same, "--nope"}, exitInput, ""},
		{"--ab without a matrix key", []string{base, "--ab", "workers.concurrency"}, exitInput, ""},
		{"--ab with two files", []string{base, same, "--ab", "workers.prefetch"}, exitInput, ""},
		{"help", []string{"--help"}, exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := runCompare(tc.args, &stdout, &stderr); got != tc.want {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tc.want, stdout.String(), stderr.String())
			}
			if tc.out != "" && !strings.Contains(stdout.String(), tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, stdout.String())
			}
		})
	}
}

// --ab compares within one result: a two-value matrix, repeated.
func TestCompareAB(t *testing.T) {
	dir := t.TempDir()
	var rs []*report.Result
	for i := range 5 {
		r := result(200)
		b := r.Variants[0]
		b.Name, b.Params = "prefetch=1", map[string]any{"workers.prefetch": 1}
		p := &b.LatencyMS.Processing
		f := 1.5 + 0.01*float64(i)
		p.Mean, p.P50, p.P90, p.P99, p.P999, p.Max = p.Mean*f, p.P50*f, p.P90*f, p.P99*f, p.P999*f, p.Max*f
		r.Variants = append(r.Variants, b)
		rs = append(rs, r)
	}
	path := write(t, dir, "ab.json", report.Combine(rs))
	var stdout, stderr bytes.Buffer
	if got := runCompare([]string{path, "--ab", "workers.prefetch"}, &stdout, &stderr); got != exitGate {
		t.Errorf("exit %d, want %d\n%s%s", got, exitGate, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "REGRESSION in default p50(processing)") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	src := writeResult(t, dir, "result.json", 200)
	var stdout, stderr bytes.Buffer
	if got := runReport([]string{src}, &stdout, &stderr); got != exitOK {
		t.Fatalf("exit %d: %s", got, stderr.String())
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html, []byte("&lt;b&gt;x&lt;/b&gt;")) {
		t.Error("report lacks the escaped description")
	}
	out := filepath.Join(dir, "other.html")
	if got := runReport([]string{src, "-o", out, "--baseline", src}, &stdout, &stderr); got != exitOK {
		t.Fatalf("exit %d: %s", got, stderr.String())
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
	if got := runReport([]string{filepath.Join(dir, "nope.json")}, &stdout, &stderr); got != exitInput {
		t.Errorf("missing result: exit %d, want %d", got, exitInput)
	}
}
