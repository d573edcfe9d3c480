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
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/worker"
)

// reporter is the part of the telemetry client the job uses.
type reporter interface {
	Outcome(o telemetry.Outcome) error
	Redelivered(seq int64) error
}

// job is the simulated handler of a scenario.
type job struct {
	cfg  Config
	tel  reporter
	dep  *depsim.Client
	pub  func(ctx context.Context, event string, body []byte) error
	rngs sync.Pool // *rand.Rand, one per handler goroutine at a time

	depCalls, depErrors atomic.Int64
}

var (
	errSimulated      = errors.New("simulated failure")
	errSimulatedFatal = errors.New("simulated permanent failure")
)

func newJob(cfg Config, tel reporter, pub func(ctx context.Context, event string, body []byte) error) *job {
	j := &job{cfg: cfg, tel: tel, pub: pub}
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
	start := time.Now()
	seq, ok := jb.HeaderInt(loadgen.HeaderSeq)
	if !ok {
		return worker.Permanent(fmt.Errorf("job %s has no %s header", jb.ID, loadgen.HeaderSeq))
	}
	if jb.Redelivered && j.tel != nil {
		if err := j.tel.Redelivered(seq); err != nil {
			return fmt.Errorf("report redelivery: %w", err)
		}
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
		j.depCalls.Add(1)
		if err := j.dep.Call(ctx); err != nil {
			j.depErrors.Add(1)
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
	// The runtime fails an attempt that returns after its deadline, even with
	// nil: a success reported then would be followed by a retry's and count
	// twice. (The window between this check and the return is microseconds.)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("simulated job finished past its deadline: %w", err)
	}
	return j.report(seq, jb, telemetry.Succeeded, start)
}

// recover is the recovery function: the job's attempts ran out or it failed
// permanently. The runtime dead-letters it after this returns.
func (j *job) recover(ctx context.Context, jb *worker.Job, cause error) error {
	seq, ok := jb.HeaderInt(loadgen.HeaderSeq)
	if !ok {
		return nil // not a harness job: nothing to account
	}
	return j.report(seq, jb, telemetry.Recovered, time.Now())
}

func (j *job) report(seq int64, jb *worker.Job, kind telemetry.Kind, start time.Time) error {
	if j.tel == nil {
		return nil
	}
	intended, _ := jb.HeaderInt(loadgen.HeaderIntended)
	now := time.Now()
	o := telemetry.Outcome{Seq: seq, Kind: kind, Attempt: jb.Attempt, Intended: intended, Done: now.UnixNano(), Processing: now.Sub(start)}
	if err := j.tel.Outcome(o); err != nil {
		// Without its report the job would look lost; let it be redelivered.
		return fmt.Errorf("report outcome: %w", err)
	}
	return nil
}
