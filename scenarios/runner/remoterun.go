package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/benchmq/bench/internal/agent"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/simworker"
)

// dispatch reads the runner's queue until ctx ends: events are applied at
// once, in order; replies go to their waiters.
func (r *remote) dispatch(ctx context.Context) {
	byName := map[string]*remoteAgent{}
	for {
		m, ok, err := r.bus.Recv(ctx)
		if !ok {
			return
		}
		if err != nil {
			r.log.Warn("control message", "err", err)
			continue
		}
		in := inMsg{Msg: m, at: time.Now().UnixNano()}
		if m.Type == agent.TypeHello {
			select {
			case r.hellos <- in:
			default: // a late answer once discovery is over
			}
			continue
		}
		if m.Run != r.v.runID {
			continue // a late reply of an earlier run
		}
		a := byName[m.From]
		if a == nil {
			a = r.agent(m.From)
			if a == nil {
				continue
			}
			byName[m.From] = a
		}
		a.lastSeen.Store(in.at)
		switch m.Type {
		case agent.TypeEvents:
			r.events(a, m)
		case agent.TypeFaultDone:
			var fd agent.FaultDone
			if m.Decode(&fd) == nil {
				r.faultMu.Lock()
				ch := r.faultCh[fd.ID]
				r.faultMu.Unlock()
				if ch != nil {
					ch <- fd
				}
			}
		case agent.TypeExited:
			var e agent.Exited
			if m.Decode(&e) == nil {
				a.exited = append(a.exited, e.Error)
				if r.v.procs != nil {
					select {
					case r.v.procs.died <- fmt.Errorf("agent %s: %s", a.name(), e.Error):
					default:
					}
				}
			}
		case agent.TypeHeartbeat:
		default:
			r.route(ctx, r.replies, in)
		}
	}
}

func (r *remote) route(ctx context.Context, ch chan inMsg, m inMsg) {
	select {
	case ch <- m:
	case <-ctx.Done():
	}
}

// agent returns the run's agent called name, or nil.
func (r *remote) agent(name string) *remoteAgent {
	r.agentsMu.Lock()
	defer r.agentsMu.Unlock()
	for _, a := range r.agents {
		if a.name() == name {
			return a
		}
	}
	return nil
}

// events applies one relayed batch.
func (r *remote) events(a *remoteAgent, m agent.Msg) {
	var ev agent.Events
	if err := m.Decode(&ev); err != nil {
		r.log.Warn("events", "agent", a.name(), "err", err)
		return
	}
	if ev.Batch != a.lastBatch+1 {
		a.gaps += int(ev.Batch - a.lastBatch - 1)
		r.log.Warn("relayed events missing", "agent", a.name(), "batches", ev.Batch-a.lastBatch-1)
	}
	a.lastBatch = ev.Batch
	if err := agent.DecodeEvents(ev.Data, a.relay); err != nil {
		r.log.Warn("events", "agent", a.name(), "err", err)
	}
	r.v.shards.Load().replay(false)
}

// await waits for a reply of type typ from every agent in want, or until
// timeout; got receives each.
func (r *remote) await(ctx context.Context, typ string, want []*remoteAgent, timeout time.Duration, got func(a *remoteAgent, m inMsg) error) error {
	pending := map[string]*remoteAgent{}
	for _, a := range want {
		pending[a.name()] = a
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for len(pending) > 0 {
		select {
		case m := <-r.replies:
			a := pending[m.From]
			if m.Type != typ || a == nil {
				continue
			}
			delete(pending, m.From)
			if err := got(a, m); err != nil {
				return err
			}
		case a := <-r.deaths:
			if pending[a.name()] != nil {
				delete(pending, a.name())
				if err := got(a, inMsg{}); err != nil {
					return err
				}
			}
		case <-t.C:
			var names []string
			for n := range pending {
				names = append(names, n)
			}
			return r.v.envErr("no %s from agents %v after %s", typ, names, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// assign hands every agent its part and waits until each has started it.
func (r *remote) assign(ctx context.Context) error {
	v := r.v
	wc := simworker.FromScenario(v.sc)
	wc.Seed = v.r.seed + int64(v.index)
	cfg, err := json.Marshal(wc)
	if err != nil {
		return fmt.Errorf("encode worker config: %w", err)
	}
	v.shards.Store(newShards(v, v.sc.Load, r.generators))
	exchange, key := v.destination()
	for _, a := range r.agents {
		as := agent.Assign{ReplyTo: r.bus.Queue()}
		if len(a.workers) > 0 {
			as.Workers = &agent.Workers{Config: cfg, Indices: a.workers}
			if v.sc.Job.DependencyCalls > 0 {
				d := v.sc.Dependency
				as.Workers.Dependency = &agent.Dependency{Latency: d.Latency, Jitter: d.Jitter, ErrorRate: d.ErrorRate, Seed: v.r.seed}
			}
		}
		if sh := a.shard; sh != nil {
			as.Generator = &agent.Generator{Exchange: exchange, RoutingKey: key, Phases: sh.phases, RunID: v.runID, FirstSeq: sh.first, Jobs: sh.n}
		}
		if err := r.send(ctx, a, agent.TypeAssign, as); err != nil {
			return fmt.Errorf("%w: %w", ErrEnvironment, err)
		}
	}
	return r.await(ctx, agent.TypeAssigned, r.agents, assignTimeout, func(a *remoteAgent, m inMsg) error {
		var res agent.Assigned
		if m.From == "" {
			return v.envErr("agent %s died while starting its part", a.name())
		}
		if err := m.Decode(&res); err != nil {
			return fmt.Errorf("%w: %w", ErrEnvironment, err)
		}
		if res.Error != "" {
			return v.envErr("agent %s could not start its part: %s", a.name(), res.Error)
		}
		return nil
	})
}

// measureClock probes a's clock clockProbes times and keeps the tightest.
func (r *remote) measureClock(ctx context.Context, a *remoteAgent) error {
	var pongs []agent.Pong
	var t3 []int64
	for range clockProbes {
		t0 := time.Now().UnixNano()
		if err := r.send(ctx, a, agent.TypePing, agent.Ping{T0: t0}); err != nil {
			return fmt.Errorf("%w: %w", ErrEnvironment, err)
		}
		err := r.await(ctx, agent.TypePong, []*remoteAgent{a}, probeTimeout, func(_ *remoteAgent, m inMsg) error {
			var p agent.Pong
			if m.From == "" {
				return r.v.envErr("agent %s died during the clock probe", a.name())
			}
			if err := m.Decode(&p); err != nil || p.T0 != t0 {
				return r.v.envErr("agent %s answered the clock probe wrongly", a.name())
			}
			pongs, t3 = append(pongs, p), append(t3, m.at)
			return nil
		})
		if err != nil {
			return err
		}
	}
	off, err := agent.EstimateOffset(pongs, t3)
	if err != nil {
		return fmt.Errorf("%w: agent %s: %w", ErrEnvironment, a.name(), err)
	}
	a.offset = off
	return nil
}

// watchLiveness tells every agent once a second that the runner is alive
// (an agent whose runner falls silent releases its part) and marks an agent
// dead once it is silent for agentDeadAfter.
func (r *remote) watchLiveness(ctx context.Context) {
	tick := time.NewTicker(agentDeadAfter / 10)
	defer tick.Stop()
	var lastBeat time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(lastBeat) >= time.Second {
			lastBeat = time.Now()
			for _, a := range r.agents {
				if !a.dead.Load() && !a.gone.Load() {
					if err := r.send(ctx, a, agent.TypeHeartbeat, nil); err != nil && ctx.Err() == nil {
						r.log.Warn("heartbeat", "agent", a.name(), "err", err)
					}
				}
			}
		}
		now := time.Now().UnixNano()
		for _, a := range r.agents {
			last := a.lastSeen.Load()
			if a.dead.Load() || a.gone.Load() || time.Duration(now-last) < agentDeadAfter {
				continue
			}
			a.diedAt.Store(last)
			a.dead.Store(true)
			r.log.Warn("agent died", "agent", a.name(), "host", a.hello.Host, "silent", time.Duration(now-last).Round(time.Millisecond))
			select {
			case r.deaths <- a:
			default:
			}
			if len(a.workers) > 0 && r.v.coll.loadStart.Load() == 0 && r.v.procs != nil {
				// Before the load a dead agent is a broken environment.
				select {
				case r.v.procs.died <- fmt.Errorf("agent %s (host %s) died", a.name(), a.hello.Host):
				default:
				}
			}
		}
	}
}

// startRemoteWorkers waits until every worker process on the agents says
// it is ready; v.procs stays empty (the agents supervise theirs) and
// carries the agents' reports of processes that exited.
func (v *variantRun) startRemoteWorkers(ctx context.Context) error {
	v.procs = newProcs(procSpec{}, v.dir, v.r.seed)
	if err := v.procs.startAll(0); err != nil {
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	return v.waitReady(ctx, v.sc.Workers.Processes, 90*time.Second)
}

// generatorLead is how far ahead of the runner's load start the agents'
// generators start, so that the start message reaches all before it.
const generatorLead = 100 * time.Millisecond

// runLoad runs the load: the runner's own generator, or the agents' shards.
func (v *variantRun) runLoad(ctx context.Context, start time.Time) (loadgen.Result, error) {
	if v.remote == nil || len(v.remote.generators) == 0 {
		return v.gen.Run(ctx, start)
	}
	return v.remote.runGenerators(ctx, start.Add(generatorLead))
}

// runGenerators starts every shard at start (the runner's clock) and waits
// for each one's result, or its agent's death.
func (r *remote) runGenerators(ctx context.Context, start time.Time) (loadgen.Result, error) {
	for _, a := range r.generators {
		if err := r.send(ctx, a, agent.TypeStart, agent.Start{At: a.offset.ToPeer(start.UnixNano())}); err != nil {
			return loadgen.Result{}, err
		}
	}
	var done []shardResult
	var errs []error
	err := r.await(ctx, agent.TypeGenDone, r.generators, r.v.sc.LoadDuration()+10*time.Minute, func(a *remoteAgent, m inMsg) error {
		sh := r.v.shards.Load()
		if m.From == "" {
			sh.mu.Lock()
			a.shard.died = true
			sh.mu.Unlock()
			return nil
		}
		var gd agent.GenDone
		if err := m.Decode(&gd); err != nil {
			return err
		}
		sh.mu.Lock()
		a.shard.done = true
		sh.mu.Unlock()
		if gd.Error != "" {
			errs = append(errs, fmt.Errorf("agent %s: %s", a.name(), gd.Error))
		}
		done = append(done, shardResult{a: a, GenDone: gd})
		return nil
	})
	res, merr := mergeShards(done)
	return res, errors.Join(append(errs, err, merr)...)
}

// releaseAgents ends every agent's part: its workers stop, it sends its
// last events and says released. Then the runner stops listening.
func (v *variantRun) releaseAgents() {
	r := v.remote
	if r == nil || !r.released.CompareAndSwap(false, true) {
		return
	}
	ctx := context.Background()
	var live []*remoteAgent
	for _, a := range r.agents {
		if !a.dead.Load() && r.send(ctx, a, agent.TypeRelease, nil) == nil {
			live = append(live, a)
		}
	}
	err := r.await(ctx, agent.TypeReleased, live, releaseTimeout, func(a *remoteAgent, m inMsg) error {
		var rel agent.Released
		if m.From != "" && m.Decode(&rel) == nil {
			a.gone.Store(true)
			if rel.LastBatch > a.lastBatch {
				// The dispatcher applied batches in order; a later one is missing.
				a.gaps += int(rel.LastBatch - a.lastBatch)
			}
		}
		return nil
	})
	if err != nil {
		v.log.Warn("release agents", "err", err)
	}
	r.stop()
	_ = r.bus.Close()
	r.bg.Wait()
	v.shards.Load().replay(true)
}

// genStats is the generator's live state; of the agents' shards only
// whether all are done is known before their results arrive.
func (v *variantRun) genStats() loadgen.Stats {
	if v.gen != nil {
		return v.gen.Stats()
	}
	s := v.shards.Load()
	done := s != nil
	if done {
		s.mu.Lock()
		for _, sh := range s.list {
			done = done && (sh.done || sh.died)
		}
		s.mu.Unlock()
	}
	return loadgen.Stats{Done: done}
}

// intendedRate is the schedule's rate at since after the load start: the
// runner's generator's, or the whole schedule's when the agents publish
// (their shards add up to it).
func (v *variantRun) intendedRate(since time.Duration) float64 {
	if v.gen != nil {
		return v.gen.IntendedRate(since)
	}
	return scheduleRate(v.phases, since-generatorLead)
}

// scheduleRate is the intended rate of phases at t after their start,
// taking spikes as instant (0 when a spike comes first: its length is not
// known ahead).
func scheduleRate(phases []loadgen.Phase, t time.Duration) float64 {
	if t < 0 {
		return 0
	}
	for _, p := range phases {
		d := p.Duration()
		if p.Kind == loadgen.KindSpike {
			continue
		}
		if t < d {
			if p.Kind == loadgen.KindSteady {
				return p.Rate
			}
			return p.From + (p.To-p.From)*t.Seconds()/d.Seconds()
		}
		t -= d
	}
	return 0
}
