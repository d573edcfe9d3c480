package procstat

import (
	"os"
	"runtime"
	"testing"
)

func TestParseRSS(t *testing.T) {
	got, err := parseRSS([]byte("Name:\tbench\nVmRSS:\t   12345 kB\nThreads: 3\n"))
	if err != nil || got != 12345*1024 {
		t.Fatalf("parseRSS = %d, %v", got, err)
	}
	for _, bad := range []string{"Name: x\n", "VmRSS: 12 MB\n", "VmRSS: x kB\n"} {
		if _, err := parseRSS([]byte(bad)); err == nil {
			t.Errorf("parseRSS(%q): no error", bad)
		}
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
