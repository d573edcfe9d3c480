package procstat

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// A worker under test may be a process tree (npm start, a shell script, a
// runtime with helper processes): its memory and CPU are the tree's.

// Tree returns pid and its descendants, pid first: every process whose chain
// of parents reaches pid, read from /proc/*/stat.
func Tree(pid int) ([]int, error) {
	children, err := readChildren()
	if err != nil {
		return nil, err
	}
	return children.tree(pid), nil
}

// childrenMap maps a pid to its children's.
type childrenMap map[int][]int

// readChildren reads every process's parent from /proc: one pass for any
// number of trees.
func readChildren() (childrenMap, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, ErrUnsupported
	}
	children := childrenMap{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone since the listing
		}
		if pp, ok := parsePPID(data); ok {
			children[pp] = append(children[pp], p)
		}
	}
	return children, nil
}

func (c childrenMap) tree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, c[out[i]]...)
	}
	return out
}

// parsePPID reads the parent pid, field 4 of stat(5): the second field after
// the command name's closing parenthesis.
func parsePPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(string(f[1]))
	return pp, err == nil
}

// Usage is the memory and CPU of a process tree.
type Usage struct {
	RSS int64         // bytes, summed over the tree
	CPU time.Duration // user+system time, summed over the tree's live processes
}

// TreeUsage returns the usage of pid's tree. A process that exits while it
// is read is left out; an error means pid itself could not be read.
func TreeUsage(pid int) (Usage, error) {
	us, errs, err := TreesUsage([]int{pid})
	if err != nil {
		return Usage{}, err
	}
	return us[0], errs[0]
}

// TreesUsage returns the usage of each pid's tree, reading /proc's process
// list once; errs[i] is set when pids[i] itself could not be read.
func TreesUsage(pids []int) (us []Usage, errs []error, err error) {
	children, err := readChildren()
	if err != nil {
		return nil, nil, err
	}
	us, errs = make([]Usage, len(pids)), make([]error, len(pids))
	for i, pid := range pids {
		us[i], errs[i] = children.usage(pid)
	}
	return us, errs, nil
}

func (c childrenMap) usage(pid int) (Usage, error) {
	pids := c.tree(pid)
	var u Usage
	for i, p := range pids {
		rss, err := RSS(p)
		if err != nil {
			if i == 0 {
				return Usage{}, err
			}
			continue
		}
		u.RSS += rss
		if cpu, err := CPU(p); err == nil {
			u.CPU += cpu
		}
	}
	return u, nil
}
