package procstat

import (
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// A shell with a child and a grandchild is a tree of three; its usage is
// the sum of theirs.
func TestTreeOfRealProcesses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	cmd := exec.Command("sh", "-c", `sh -c 'sleep 60 & wait' & wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	pid := cmd.Process.Pid
	// The shells fork when they like, with no event to wait on: poll
	// (bounded) until the tree is whole.
	var tree []int
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for polling := true; polling; {
		var err error
		if tree, err = Tree(pid); err != nil {
			t.Fatal(err)
		}
		select {
		case <-tick.C:
			polling = len(tree) < 3
		case <-deadline.C:
			polling = false
		}
	}
	if len(tree) != 3 || tree[0] != pid || slices.Contains(tree[1:], pid) {
		t.Fatalf("tree of %d = %v, want it and two descendants", pid, tree)
	}
	// The children files give the same tree as the scan of every process.
	fast, ok := fastTree(pid)
	if !ok {
		t.Log("no /proc/<pid>/task/*/children here: TreesUsage scans /proc")
	} else if slices.Sort(fast); !slices.Equal(fast, slices.Sorted(slices.Values(tree))) {
		t.Errorf("tree from the children files %v, from the scan %v", fast, tree)
	}
	u, err := TreeUsage(pid)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range tree {
		r, err := RSS(p)
		if err != nil {
			t.Fatal(err)
		}
		sum += r
	}
	own, _ := RSS(pid)
	if u.RSS <= own || u.RSS < sum/2 || u.RSS > sum*2 {
		t.Errorf("tree RSS %d; the leader's %d, the sum read again %d", u.RSS, own, sum)
	}
	if _, err := TreeUsage(1 << 30); err == nil {
		t.Error("usage of a pid that does not exist")
	}
}

func TestParsePPID(t *testing.T) {
	if pp, ok := parsePPID([]byte("4242 (a) b) S 17 4242 4242 0")); !ok || pp != 17 {
		t.Errorf("parsePPID = %d, %v", pp, ok)
	}
	if _, ok := parsePPID([]byte("4242 (a) S")); ok {
		t.Error("parsePPID of a short line")
	}
}
