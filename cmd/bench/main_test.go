package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExitCodesForBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: Bad Name\ntask: bench.job.process\nload: [{spike: {jobs: 1}}]\nworkers: {prefetch: -1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, exitInput},
		{[]string{"nope"}, exitInput},
		{[]string{"--help"}, exitOK},
		{[]string{"validate"}, exitInput},
		{[]string{"validate", "../../scenarios/spike.yaml"}, exitOK},
		{[]string{"validate", bad}, exitInput},
		{[]string{"validate", filepath.Join(dir, "missing.yaml")}, exitInput},
		{[]string{"run", bad}, exitInput},
		{[]string{"run", "../../scenarios/spike.yaml", "--set", "workers.prefetch=lots"}, exitInput},
		{[]string{"run", "--no-such-flag", "x.yaml"}, exitInput},
		{[]string{"run", "--help"}, exitOK},
		{[]string{"worker", "--help"}, exitOK},
		{[]string{"worker"}, exitInput},
	} {
		stdout, stderr := os.Stdout, os.Stderr
		devnull, _ := os.Open(os.DevNull)
		os.Stdout, os.Stderr = devnull, devnull
		got := dispatch(tc.args, io.Discard)
		os.Stdout, os.Stderr = stdout, stderr
		devnull.Close()
		if got != tc.want {
			t.Errorf("bench %v: exit %d, want %d", tc.args, got, tc.want)
		}
	}
}
