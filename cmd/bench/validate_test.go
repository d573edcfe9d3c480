package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const smallScenario = "name: s\ntask: bench.job.process\nload:\n  - spike: {jobs: 10}\n"

// Input limits: a huge file, an endless one and a huge load are refused with
// the limit in the message, before they cost time or memory.
func TestValidateLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	// 50 MB of phases: 2.5 M of them.
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("name: big\ntask: bench.job.process\nload:\n"); err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("  - spike: {jobs: 1}\n", 1000)
	for range 50 << 20 / len(line) {
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var phases strings.Builder
	phases.WriteString("name: many\ntask: bench.job.process\nload:\n")
	for range 1000 {
		phases.WriteString("  - spike: {jobs: 1073741824}\n")
	}
	many := filepath.Join(dir, "many.yaml")
	if err := os.WriteFile(many, []byte(phases.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"50 MB file", []string{"validate", big}, "larger than the limit of 1048576 bytes (1 MiB)"},
		{"endless file", []string{"validate", "/dev/zero"}, "larger than the limit of 1048576 bytes (1 MiB)"},
		{"1,000 phases of 2^30 jobs", []string{"validate", many}, "many.yaml:3:1: load: publishes 1073741824000 jobs in all, more than the limit of 100000000 per variant"},
		{"plan of the same", []string{"plan", many}, "more than the limit of 100000000 per variant"},
		{"endless stdin", []string{"validate", "-"}, "read scenario <stdin>: larger than the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdin = strings.NewReader("")
			if tc.name == "endless stdin" {
				f, err := os.Open("/dev/zero")
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				code, stdout, stderr := bench(t, f, tc.args...)
				check(t, code, stdout, stderr, tc.want)
				return
			}
			code, stdout, stderr := bench(t, stdin, tc.args...)
			check(t, code, stdout, stderr, tc.want)
		})
	}
}

func check(t *testing.T, code int, stdout, stderr, want string) {
	t.Helper()
	if code != exitInput || !strings.Contains(stderr, want) || strings.Contains(stdout, "ok") {
		t.Errorf("exit %d, stdout %q, stderr:\n%.500s\nwant exit 2 and %q", code, stdout, stderr, want)
	}
}

// `bench validate -` reads the scenario from standard input.
func TestValidateStdin(t *testing.T) {
	code, stdout, stderr := bench(t, strings.NewReader(smallScenario), "validate", "-")
	if code != exitOK || stdout != "-: ok\n" {
		t.Errorf("valid scenario on stdin: exit %d, %q %q", code, stdout, stderr)
	}
	code, _, stderr = bench(t, strings.NewReader(smallScenario+"workers: {prefech: 1}\n"), "validate", "-")
	if code != exitInput || !strings.Contains(stderr, "<stdin>:5:11: workers: unknown key prefech; did you mean prefetch?") {
		t.Errorf("invalid scenario on stdin: exit %d:\n%s", code, stderr)
	}
}

// Two faults that take one target down at the same time cannot both be
// undone in order: validate says so (exit 2), before any broker starts.
func TestValidateOverlappingFaults(t *testing.T) {
	src := smallScenario + "job: {dependency_calls: 1}\ndrain_timeout: 60s\nfaults:\n" +
		"  - {at: 1s, for: 10s, target: dependency, down: true}\n" +
		"  - {at: 5s, for: 10s, target: dependency, down: true}\n" +
		"  - {at: 20s, for: 5s, target: dependency, down: true}\n"
	path := filepath.Join(t.TempDir(), "overlap.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := bench(t, nil, "validate", path)
	if code != exitInput || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if n := strings.Count(stderr, "\n"); n != 1 || !strings.Contains(stderr, fmt.Sprintf("%s:9:5:", path)) || !strings.Contains(stderr, "overlap") {
		t.Errorf("want one error at the second fault (9:5) about the overlap, got:\n%s", stderr)
	}
}
