// Package procstat reads a process's resident memory and CPU time from /proc.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ErrUnsupported is returned where /proc is not available.
var ErrUnsupported = errors.New("procstat: /proc not available")

// RSS returns the resident set size of pid in bytes (VmRSS of /proc/pid/status).
// pid 0 means this process.
func RSS(pid int) (int64, error) {
	path := "/proc/self/status"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && pid == 0 {
			return 0, ErrUnsupported
		}
		return 0, fmt.Errorf("read rss of %d: %w", pid, err)
	}
	return parseRSS(data)
}

func parseRSS(status []byte) (int64, error) {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, fmt.Errorf("parse VmRSS %q", rest)
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmRSS %q: %w", rest, err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("parse status: no VmRSS line")
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on every
// architecture Linux exposes to user space.
const userHZ = 100

// CPU returns the user+system CPU time pid has used (/proc/pid/stat, all its
// threads), in steps of 10ms. pid 0 means this process.
func CPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && pid == 0 {
			return 0, ErrUnsupported
		}
		return 0, fmt.Errorf("read cpu time of %d: %w", pid, err)
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
