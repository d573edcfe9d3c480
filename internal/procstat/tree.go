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

// taskChildren returns pid's children from /proc/<pid>/task/*/children: a
// few small files instead of every process's stat (the runner samples its
// workers four times a second, on machines with hundreds of processes). ok
// is false when the kernel has no such files (CONFIG_PROC_CHILDREN).
func taskChildren(pid int) (kids []int, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, true // gone: no children
	}
	for _, t := range tasks {
		data, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			if os.IsNotExist(err) {
				if _, serr := os.Stat(dir + "/" + t.Name()); serr == nil {
					return nil, false // the thread is there, the file is not
				}
			}
			continue // the thread ended
		}
		for _, f := range bytes.Fields(data) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				kids = append(kids, c)
			}
		}
	}
	return kids, true
}

// fastTree is Tree through taskChildren; ok is false when that is not
// available.
func fastTree(pid int) ([]int, bool) {
	out := []int{pid}
	for i := 0; i < len(out) && i < maxTree; i++ {
		kids, ok := taskChildren(out[i])
		if !ok {
			return nil, false
		}
		out = append(out, kids...)
	}
	return out, true
}

// maxTree bounds a tree walk: a worker's tree is a handful of processes.
const maxTree = 4096

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
	trees := make([][]int, len(pids))
	var children childrenMap // read only when the fast way is not available
	for i, pid := range pids {
		t, ok := fastTree(pid)
		if !ok {
			if children == nil {
				if children, err = readChildren(); err != nil {
					return nil, nil, err
				}
			}
			t = children.tree(pid)
		}
		trees[i] = t
	}
	us, errs = make([]Usage, len(pids)), make([]error, len(pids))
	for i, t := range trees {
		us[i], errs[i] = usage(t)
	}
	return us, errs, nil
}

// usage sums the RSS and CPU of the processes of a tree (root first), one
// read of /proc/<pid>/stat each.
func usage(tree []int) (Usage, error) {
	var u Usage
	for i, p := range tree {
		data, err := readProc(p, "stat")
		if err == nil {
			var st stat
			if st, err = parseStat(data); err == nil {
				u.RSS += st.rss
				u.CPU += st.cpu
				continue
			}
		}
		if i == 0 {
			return Usage{}, err
		}
	}
	return u, nil
}
