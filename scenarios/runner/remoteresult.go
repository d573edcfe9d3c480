package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/benchmq/bench/internal/agent"
	"github.com/benchmq/bench/internal/buildinfo"
	"github.com/benchmq/bench/report"
)

// faultTimeout bounds how long a fault on an agent's worker may take.
const faultTimeout = time.Minute

// remoteWorkers is the fault timeline's worker target when the workers run
// on agents: it picks a live worker agent, which picks one of its
// processes, kills, stops or pauses it, and respawns it as the runner would.
type remoteWorkers struct {
	r   *remote
	rng *rand.Rand
}

func (w *remoteWorkers) pick() (*remoteAgent, error) {
	var live []*remoteAgent
	for _, a := range w.r.workers {
		if !a.dead.Load() && !a.gone.Load() {
			live = append(live, a)
		}
	}
	if len(live) == 0 {
		return nil, errors.New("no live agent runs workers")
	}
	return live[w.rng.IntN(len(live))], nil
}

// act sends a fault to a and waits for its result.
func (w *remoteWorkers) act(ctx context.Context, a *remoteAgent, f agent.Fault) error {
	r := w.r
	ch := make(chan agent.FaultDone, 1)
	r.faultMu.Lock()
	r.faultCh[f.ID] = ch
	r.faultMu.Unlock()
	defer func() {
		r.faultMu.Lock()
		delete(r.faultCh, f.ID)
		r.faultMu.Unlock()
	}()
	if err := r.send(ctx, a, agent.TypeFault, f); err != nil {
		return err
	}
	t := time.NewTimer(faultTimeout)
	defer t.Stop()
	select {
	case d := <-ch:
		if d.Error != "" {
			return fmt.Errorf("agent %s: %s", a.name(), d.Error)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("agent %s: no answer to %s after %s", a.name(), f.Action, faultTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *remoteWorkers) instant(ctx context.Context, action string) error {
	a, err := w.pick()
	if err != nil {
		return err
	}
	return w.act(ctx, a, agent.Fault{ID: w.r.faultID.Add(1), Action: action})
}

// Kill SIGKILLs one worker process on an agent, which respawns it.
func (w *remoteWorkers) Kill(ctx context.Context) error { return w.instant(ctx, agent.FaultKill) }

// Stop SIGTERMs one worker process on an agent, which respawns it.
func (w *remoteWorkers) Stop(ctx context.Context) error { return w.instant(ctx, agent.FaultStop) }

// Pause SIGSTOPs one worker process on an agent; the function returned resumes it.
func (w *remoteWorkers) Pause(ctx context.Context) (func(context.Context) error, error) {
	a, err := w.pick()
	if err != nil {
		return nil, err
	}
	id := w.r.faultID.Add(1)
	if err := w.act(ctx, a, agent.Fault{ID: id, Action: agent.FaultPause}); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		return w.act(ctx, a, agent.Fault{ID: id, Action: agent.FaultResume})
	}, nil
}

// workerTarget is what worker faults act on: the runner's processes, or
// the agents'.
func (v *variantRun) workerTarget() interface {
	Kill(context.Context) error
	Stop(context.Context) error
	Pause(context.Context) (func(context.Context) error, error)
} {
	if v.remote != nil && len(v.remote.workers) > 0 {
		return &remoteWorkers{r: v.remote, rng: rand.New(rand.NewPCG(uint64(v.r.seed), 0x6167_656e_74))}
	}
	return v.procs
}

// collectAgents records each agent of the run: what it ran, its clock, its
// shard as the ledger accounts it, and whether it died.
func (v *variantRun) collectAgents(rv *report.Variant, start time.Time) {
	r := v.remote
	if r == nil {
		return
	}
	var worst time.Duration
	stats := v.coll.workerStats()
	for _, a := range r.agents {
		ra := report.Agent{Name: a.name(), Host: a.hello.Host, Labels: a.hello.Labels, Workers: a.workers,
			ClockOffsetMS:      float64(a.offset.Offset) / float64(time.Millisecond),
			ClockUncertaintyMS: float64(a.offset.Uncertainty) / float64(time.Millisecond),
			MissingBatches:     a.gaps, Notes: a.exited}
		worst = max(worst, a.offset.Uncertainty)
		if mine := buildinfo.Read().String(); a.hello.Version != mine {
			rv.Warnings = append(rv.Warnings, fmt.Sprintf("agent %s runs %s, the runner %s: their workers and generator may differ", a.name(), a.hello.Version, mine))
		}
		if sh := a.shard; sh != nil {
			c := v.ledger.CountRange(sh.first, sh.first+sh.n)
			ra.Generator = &report.AgentShard{FirstSeq: sh.first, Jobs: sh.n, Published: c.Published, Confirmed: c.Confirmed,
				Unconfirmed: c.Unconfirmed, Finished: c.Final, Lost: c.Lost}
		}
		if a.dead.Load() {
			ra.Died = true
			at := time.Unix(0, a.diedAt.Load()).Sub(start).Seconds()
			ra.DiedAtS = &at
			for _, s := range stats {
				for _, w := range a.workers {
					if s.Worker == w {
						ra.UnackedAtLastStats += s.Unacked
					}
				}
			}
			rv.Warnings = append(rv.Warnings, fmt.Sprintf("agent %s (host %s) died %.1f s into the run: its workers held %d deliveries at their last stats, which the broker requeued unless acked; jobs they finished in the last %s before it died were not relayed and count as lost", a.name(), a.hello.Host, at, ra.UnackedAtLastStats, flushEvery))
		}
		if a.gaps > 0 {
			rv.Warnings = append(rv.Warnings, fmt.Sprintf("agent %s: %d relayed event batches never arrived; their outcomes count as lost", a.name(), a.gaps))
		}
		rv.Agents = append(rv.Agents, ra)
	}
	if worst > time.Millisecond {
		rv.Warnings = append(rv.Warnings, fmt.Sprintf("end-to-end latency across hosts is corrected for the measured clock offsets and uncertain by up to ±%s", (2*worst).Round(time.Microsecond)))
	}
}
