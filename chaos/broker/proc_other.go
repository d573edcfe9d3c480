//go:build unix && !linux

package broker

import (
	"errors"
	"syscall"
)

// pidAlive reports whether pid runs.
func pidAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// findBeam needs /proc; without it a node is found by its pid file only.
func findBeam(string) int { return 0 }

// procStart is unknown without /proc.
func procStart(int) (uint64, error) { return 0, errors.ErrUnsupported }
