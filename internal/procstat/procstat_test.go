package procstat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseRSS(t *testing.T) {
	got, err := parseStatusKB([]byte("Name:\tbench\nVmRSS:\t   12345 kB\nThreads: 3\n"), "VmRSS")
	if err != nil || got != 12345*1024 {
		t.Fatalf("parseStatusKB VmRSS = %d, %v", got, err)
	}
	for _, bad := range []string{"Name: x\n", "VmRSS: 12 MB\n", "VmRSS: x kB\n"} {
		if _, err := parseStatusKB([]byte(bad), "VmRSS"); err == nil {
			t.Errorf("parseStatusKB(%q, VmRSS): no error", bad)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
	if v, err := parseStatusKB(status, "VmHWM"); err != nil || v != 2048*1024 {
		t.Fatalf("VmHWM = %d, %v; want %d", v, err, 2048*1024)
	}
	if _, err := parseStatusKB([]byte("VmHWM: lots\n"), "VmHWM"); err == nil {
		t.Fatal("parsed a malformed line")
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Fatal("found a missing key")
	}
}

func TestRSSGrowsWithTouchedMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	before, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	after, err := RSS(0)
	runtime.KeepAlive(buf)
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 48<<20 {
		t.Fatalf("RSS grew by %d bytes after touching 64 MiB", after-before)
	}
}

func TestParseCPU(t *testing.T) {
	// A command name with a space and a parenthesis, utime 250 and stime 31 ticks.
	stat := "4242 (beam.smp (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 31 0 0 20 0 30 0 100 1000000 5000\n"
	got, err := parseCPU([]byte(stat))
	if err != nil || got != 2810*time.Millisecond {
		t.Fatalf("parseCPU = %v, %v; want 2.81s", got, err)
	}
	for _, bad := range []string{"4242 beam S 1", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u 0"} {
		if _, err := parseCPU([]byte(bad)); err == nil {
			t.Errorf("parseCPU(%q): no error", bad)
		}
	}
}

func TestCPUGrowsWithWork(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has charged at least two ticks (bounded: 10s of wall time).
	deadline := time.Now().Add(10 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ {
		if x%1_000_000 == 0 {
			now, err := CPU(0)
			if err != nil {
				t.Fatal(err)
			}
			if now-before >= 20*time.Millisecond {
				return
			}
		}
	}
	t.Fatal("CPU time did not grow by 20ms in 10s of spinning")
}

func TestParseStat(t *testing.T) {
	// stat(5) of a process whose name holds a space and a parenthesis:
	// utime 150, stime 50 ticks; rss 300 pages.
	line := "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 100 1000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.cpu != 2*time.Second || st.rss != 300*pageSize {
		t.Errorf("parseStat = %+v, want cpu 2s and rss %d", st, 300*pageSize)
	}
	if _, err := parseStat([]byte("42 (x) S 1 2 3")); err == nil {
		t.Error("a short stat line parsed")
	}
}
