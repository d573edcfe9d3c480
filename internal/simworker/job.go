package simworker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benchmq/bench/chaos/depsim"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/worker"
)

// job is the simulated handler of a scenario. It reports nothing itself: the
// runtime reports every job's outcome and redelivery to the runner
// (worker/harness.go), from where it decides and acks, as for any service
// built on it.
type job struct {
	cfg  Config
	dep  *depsim.Client
	pub  func(ctx context.Context, event string, body []byte) error
	rngs sync.Pool // *rand.Rand, one per handler goroutine at a time
}

var (
	errSimulated      = errors.New("simulated failure")
	errSimulatedFatal = errors.New("simulated permanent failure")
)

func newJob(cfg Config, pub func(ctx context.Context, event string, body []byte) error) *job {
	j := &job{cfg: cfg, pub: pub}
	if cfg.Job.DependencyCalls > 0 {
		j.dep = depsim.NewClient(cfg.DependencyURL, cfg.DependencyTO)
	}
	var seeds atomic.Uint64
	seeds.Store(uint64(cfg.Seed)<<16 | uint64(cfg.Worker))
	j.rngs.New = func() any {
		s := seeds.Add(0x9e3779b97f4a7c15)
		return rand.New(rand.NewPCG(s, s^0xda3e39cb94b95bdb))
	}
	return j
}

// handle runs one attempt of the simulated job.
func (j *job) handle(ctx context.Context, jb *worker.Job) error {
	seq, ok := jb.HeaderInt(loadgen.HeaderSeq)
	if !ok {
		return worker.Permanent(fmt.Errorf("job %s has no %s header", jb.ID, loadgen.HeaderSeq))
	}
	var held []byte
	if j.cfg.Job.Hold > 0 {
		held = make([]byte, j.cfg.Job.Hold)
		for i := 0; i < len(held); i += 4096 {
			held[i] = 1 // resident, not just reserved
		}
	}
	r := j.rngs.Get().(*rand.Rand)
	work := j.cfg.Job.Work.Sample(r)
	failed := r.Float64() < j.cfg.Job.FailRate
	fatal := r.Float64() < j.cfg.Job.FatalRate
	j.rngs.Put(r)

	if work > 0 {
		t := time.NewTimer(work)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("simulated work: %w", ctx.Err())
		}
	}
	for range j.cfg.Job.DependencyCalls {
		if err := j.dep.Call(ctx); err != nil {
			return fmt.Errorf("call dependency: %w", err)
		}
	}
	runtime.KeepAlive(held)
	if fatal {
		return worker.Permanent(errSimulatedFatal)
	}
	if failed {
		return errSimulated
	}
	if j.cfg.Job.Emit != "" {
		var body [8]byte
		binary.LittleEndian.PutUint64(body[:], uint64(seq))
		if err := j.pub(ctx, j.cfg.Job.Emit, body[:]); err != nil {
			return fmt.Errorf("emit %s: %w", j.cfg.Job.Emit, err)
		}
	}
	return nil
}

// recover is the recovery function: the job's attempts ran out or it failed
// permanently. The runtime reports it recovered and dead-letters it after
// this returns; the simulated service has nothing to clean up.
func (j *job) recover(context.Context, *worker.Job, error) error { return nil }
