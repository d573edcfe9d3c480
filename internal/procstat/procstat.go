// Package procstat reads a process's resident memory from /proc.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
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
