// Package procstat reads a process's resident memory and CPU time from /proc.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ErrUnsupported is returned where /proc is not available.
var ErrUnsupported = errors.New("procstat: /proc not available")

// RSS returns the resident set size of pid in bytes (VmRSS of /proc/pid/status).
// pid 0 means this process.
func RSS(pid int) (int64, error) { return Status(pid, "VmRSS") }

// Status returns a memory figure of /proc/pid/status in bytes, such as "VmRSS" or
// "VmHWM" (the peak). pid 0 means this process.
func Status(pid int, key string) (int64, error) {
	data, err := readProc(pid, "status")
	if err != nil {
		return 0, err
	}
	return parseStatusKB(data, key)
}

// readProc reads /proc/pid/file (/proc/self/file for pid 0).
func readProc(pid int, file string) ([]byte, error) {
	path := "/proc/self/" + file
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/" + file
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && pid == 0 {
			return nil, ErrUnsupported
		}
		return nil, fmt.Errorf("read %s of %d: %w", file, pid, err)
	}
	return data, nil
}

// parseStatusKB reads the "Key:   123 kB" line of a /proc/<pid>/status, in bytes.
func parseStatusKB(status []byte, key string) (int64, error) {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte(key+":"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, fmt.Errorf("parse %s %q", key, rest)
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s %q: %w", key, rest, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("parse status: no %s line", key)
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on every
// architecture Linux exposes to user space.
const userHZ = 100

// CPU returns the user+system CPU time pid has used (/proc/pid/stat, all its
// threads), in steps of 10ms. pid 0 means this process.
func CPU(pid int) (time.Duration, error) {
	data, err := readProc(pid, "stat")
	if err != nil {
		return 0, err
	}
	return parseCPU(data)
}

func parseCPU(stat []byte) (time.Duration, error) {
	// The command name may hold spaces and parentheses; the fields follow its
	// last ')': state is field 3 of stat(5), utime 14 and stime 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat %q: no command name", stat)
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, field := range f[11:13] {
		n, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse stat cpu time %q: %w", field, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// stat is what usage reads from /proc/<pid>/stat.
type stat struct {
	cpu time.Duration
	rss int64 // bytes: the same counters as status's VmRSS
}

var pageSize = int64(os.Getpagesize())

// parseStat reads the CPU time (fields 14, 15) and the resident set (field 24,
// in pages) of stat(5).
func parseStat(data []byte) (stat, error) {
	cpu, err := parseCPU(data)
	if err != nil {
		return stat{}, err
	}
	f := bytes.Fields(data[bytes.LastIndexByte(data, ')')+1:])
	if len(f) < 22 {
		return stat{}, fmt.Errorf("parse stat: %d fields after the command name, want at least 22", len(f))
	}
	pages, err := strconv.ParseInt(string(f[21]), 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("parse stat rss %q: %w", f[21], err)
	}
	return stat{cpu: cpu, rss: pages * pageSize}, nil
}

// SelfCPU returns this process's user+system CPU time from getrusage: exact to
// the microsecond, unlike CPU's 10 ms steps, and without reading /proc.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
