package runner

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// idleWorker stands in for a worker process: it waits for SIGTERM and exits 0.
func idleWorker() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	fmt.Println("idle worker up")
	<-c
	fmt.Println("idle worker stopping")
	os.Exit(0)
}

func procState(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// eventually polls cond until it holds: process states and log files give no
// event to wait on.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitState waits until pid reaches one of the states.
func waitState(t *testing.T, pid int, states string) {
	t.Helper()
	eventually(t, fmt.Sprintf("pid %d in one of %s", pid, states), func() bool {
		return strings.Contains(states, procState(t, pid))
	})
}

// waitLogs waits until each worker's log says it is up (its signal handler is set).
func waitLogs(t *testing.T, dir string, n int, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d workers to log %q", n, want), func() bool {
		for i := range n {
			b, _ := os.ReadFile(fmt.Sprintf("%s/worker-%d.log", dir, i))
			if !strings.Contains(string(b), want) {
				return false
			}
		}
		return true
	})
}

func TestProcsActionsOnRealProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := newProcs(simSpec([]string{exe, "idle"}, "unused.json", "127.0.0.1:1", nil), dir, 1)
	if err := p.startAll(2); err != nil {
		t.Fatal(err)
	}
	defer p.stopAll(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	waitLogs(t, dir, 2, "idle worker up")
	before := p.pids()
	if len(before) != 2 {
		t.Fatalf("pids %v", before)
	}
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	after := p.pids()
	if len(after) != 2 || (after[0] == before[0] && after[1] == before[1]) {
		t.Fatalf("kill did not respawn a process: %v -> %v", before, after)
	}
	for _, pid := range before {
		if pid != after[0] && pid != after[1] {
			waitState(t, pid, "gone Z")
		}
	}

	waitLogs(t, dir, 2, "idle worker up")
	before = after
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	after = p.pids()
	if len(after) != 2 || (after[0] == before[0] && after[1] == before[1]) {
		t.Fatalf("stop did not respawn a process: %v -> %v", before, after)
	}
	logs, _ := os.ReadFile(dir + "/worker-0.log")
	logs1, _ := os.ReadFile(dir + "/worker-1.log")
	if !strings.Contains(string(logs)+string(logs1), "idle worker stopping") {
		t.Fatalf("stop was not graceful (no SIGTERM handled); logs: %q %q", logs, logs1)
	}

	resume, err := p.Pause(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "one process stopped by the pause", func() bool {
		stopped := 0
		for _, pid := range p.pids() {
			if procState(t, pid) == "T" {
				stopped++
			}
		}
		return stopped == 1
	})
	if err := resume(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range p.pids() {
		waitState(t, pid, "S R")
	}
	select {
	case err := <-p.died:
		t.Fatalf("a process died unexpectedly: %v", err)
	default:
	}
}
