package main

import "testing"

func TestPerfRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--repeat", "0"},
		{"--messages", "1"},
		{"--publish-rounds", "0"},
		{"--only", "nope"},
		{"--prefetch", "0"},
		{"extra-arg"},
		{"--no-such-flag"},
		{"--managed", "--amqp-url", "amqp://guest:guest@127.0.0.1:5672/"},
	} {
		if code := cmdPerf(args, discard()); code != exitInput {
			t.Errorf("bench perf %v: exit %d, want %d", args, code, exitInput)
		}
	}
}

func TestPerfChildRejectsBadFlags(t *testing.T) {
	if code := cmdPerf([]string{"--child", "--impl", "fast"}, discard()); code != exitInput {
		t.Errorf("bench perf --child --impl fast: exit %d, want %d", code, exitInput)
	}
}
