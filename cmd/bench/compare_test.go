package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benchmq/bench/report"
)

func writeResult(t *testing.T, dir, name string, p99 float64) string {
	t.Helper()
	r := &report.Result{
		SchemaVersion: report.SchemaVersion,
		Passed:        true,
		Scenario:      report.Scenario{Name: "spike", Description: "<b>x</b>"},
		Variants: []report.Variant{{
			Name:         "prefetch=10",
			Params:       map[string]any{"workers.prefetch": 10},
			Passed:       true,
			LatencyMS:    report.Latencies{EndToEnd: report.Summary{Count: 5000, P50: 40, P99: p99, Max: 2 * p99}},
			Throughput:   report.Throughput{PublishPerS: 900, CompletePerS: 880},
			DrainSeconds: 5,
			Peak:         report.Peak{WorkerRSSBytes: 50 << 20},
		}},
	}
	path := filepath.Join(dir, name)
	if err := report.WriteFile(path, r); err != nil {
		t.Fatal(err)
	}
	return path
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
	for _, tc := range []struct {
		name string
		args []string
		want int
		out  string
	}{
		{"same", []string{base, same}, exitOK, "no regression"},
		{"p99 doubled", []string{base, worse}, exitGate, "REGRESSED"},
		{"p99 doubled, loose limit", []string{base, worse, "--max-regression", "150%"}, exitOK, "no regression"},
		{"p99 doubled, loose p99 threshold", []string{base, worse, "--threshold", "p99_ms=120%", "--threshold", "max_ms=120"}, exitOK, "no regression"},
		{"missing file", []string{base, filepath.Join(dir, "nope.json")}, exitInput, ""},
		{"unparsable file", []string{base, garbage}, exitInput, ""},
		{"one file", []string{base}, exitInput, ""},
		{"bad percent", []string{base, same, "--max-regression", "lots"}, exitInput, ""},
		{"unknown metric", []string{base, same, "--threshold", "p42=10%"}, exitInput, ""},
		{"unknown flag", []string{base, same, "--nope"}, exitInput, ""},
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
