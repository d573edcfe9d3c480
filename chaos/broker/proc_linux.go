package broker

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// pidAlive reports whether pid runs; a zombie counts as gone (nobody may
// reap an orphaned wrapper in a container).
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

// findBeam finds the Erlang VM whose environment holds marker: RabbitMQ 3.10
// does not put the node name on its command line.
func findBeam(marker string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || !bytes.HasPrefix(comm, []byte("beam")) {
			continue
		}
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == marker {
				pid, err := strconv.Atoi(filepath.Base(d))
				if err == nil && pidAlive(pid) {
					return pid
				}
			}
		}
	}
	return 0
}
