package runner

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// spinUntil reads the meter over pids until it shows at least want, or fails
// after 10 s.
func spinUntil(t *testing.T, m *cpuMeter, pids []int, want time.Duration, spin bool) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := m.read(pids); got >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU of %v did not reach %v in 10 s", pids, want)
		}
		if spin {
			for i := 0; i < 1e6; i++ {
				_ = i * i
			}
		} else {
			time.Sleep(time.Millisecond) // waiting for another process, not synchronising
		}
	}
}

// The meter counts CPU from begin on, counts a process it first sees later
// from zero, and keeps an exited process's last reading.
func TestCPUMeter(t *testing.T) {
	self := os.Getpid()
	m := newCPUMeter()
	m.begin([]int{self})
	if got := m.read([]int{self}); got > 100*time.Millisecond {
		t.Fatalf("right after begin: %v", got)
	}
	mine := spinUntil(t, m, []int{self}, 30*time.Millisecond, true)

	// A child that burns CPU, then waits on its stdin.
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; read x; exit 0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	both := spinUntil(t, m, []int{pid}, mine+20*time.Millisecond, false)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if after := m.read([]int{pid}); after < both {
		t.Errorf("after the child exited: %v, before %v: its CPU was dropped", after, both)
	}
}

// busiest is the highest one process's CPU over the interval, in cores.
func TestCPUMeterBusiest(t *testing.T) {
	m := newCPUMeter()
	m.last = map[int]time.Duration{1: time.Second, 2: time.Second}
	cores, prev := m.busiest(nil, 0.25)
	if cores != 0 {
		t.Errorf("first sample: %v cores, want 0 (no interval yet)", cores)
	}
	m.last[1] += 100 * time.Millisecond // 0.4 cores over 250 ms
	m.last[2] += 200 * time.Millisecond // 0.8 cores
	m.last[3] = 5 * time.Second         // new: no interval yet
	if cores, _ = m.busiest(prev, 0.25); cores < 0.79 || cores > 0.81 {
		t.Errorf("busiest = %v cores, want 0.8", cores)
	}
}
