package runner

import (
	"sync"
	"time"

	"github.com/benchmq/bench/internal/procstat"
)

// cpuMeter sums the CPU time (user+system, from /proc) the worker processes
// used since the load started, each with its live descendants (a worker may
// be a tree: npm start, a shell script). A process that exits keeps its last
// reading; one started later (a respawn after a kill) counts from zero.
type cpuMeter struct {
	mu    sync.Mutex
	start map[int]time.Duration // by pid, at the load start
	last  map[int]time.Duration // by pid, the latest reading
}

func newCPUMeter() *cpuMeter {
	return &cpuMeter{start: map[int]time.Duration{}, last: map[int]time.Duration{}}
}

// begin reads every process's CPU time at the load start.
func (c *cpuMeter) begin(pids []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid, t := range treeCPU(pids) {
		c.start[pid], c.last[pid] = t, t
	}
}

// treeCPU reads the CPU time of each pid's tree; a pid that cannot be read
// is left out.
func treeCPU(pids []int) map[int]time.Duration {
	us, errs, err := procstat.TreesUsage(pids)
	return cpuOf(pids, us, errs, err)
}

// cpuOf picks the CPU times out of a procstat.TreesUsage reading.
func cpuOf(pids []int, us []procstat.Usage, errs []error, err error) map[int]time.Duration {
	out := make(map[int]time.Duration, len(pids))
	if err != nil {
		return out
	}
	for i, pid := range pids {
		if errs[i] == nil {
			out[pid] = us[i].CPU
		}
	}
	return out
}

// read takes a fresh reading of pids and returns the total since the start.
func (c *cpuMeter) read(pids []int) time.Duration {
	us, errs, err := procstat.TreesUsage(pids)
	return c.update(pids, us, errs, err)
}

// update is read with a reading already taken (the sampler's).
func (c *cpuMeter) update(pids []int, us []procstat.Usage, errs []error, err error) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid, t := range cpuOf(pids, us, errs, err) {
		if t >= c.last[pid] {
			c.last[pid] = t
		}
	}
	var total time.Duration
	for pid, t := range c.last {
		total += t - c.start[pid]
	}
	return total
}
