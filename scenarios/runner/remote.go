package runner

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benchmq/bench/internal/agent"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/scenarios"
)

// Timings of the runner's side of the agent protocol.
const (
	discoverEvery = time.Second
	clockProbes   = 8
	probeTimeout  = 2 * time.Second
	assignTimeout = 60 * time.Second
	// agentDeadAfter is how long an agent may be silent (it sends a
	// heartbeat a second) before it counts as dead.
	agentDeadAfter = 5 * time.Second
	releaseTimeout = 45 * time.Second
)

// runnerName is how the runner signs its messages.
const runnerName = "runner"

// remote is a variant's agents: found, handed their parts, timed, watched
// and released. Its dispatcher is the only reader of the runner's queue: it
// applies relayed events in the order each agent sent them and routes the
// other replies to whoever waits for them.
type remote struct {
	v   *variantRun
	bus *agent.Bus
	log *slog.Logger

	agentsMu   sync.Mutex     // agents is set by place while the dispatcher may read it
	agents     []*remoteAgent // every agent with a part, in order
	workers    []*remoteAgent // those running worker processes
	generators []*remoteAgent // those running a generator shard

	hellos   chan inMsg
	replies  chan inMsg // assigned, pong, gen_done, released
	faultMu  sync.Mutex
	faultCh  map[int64]chan agent.FaultDone
	faultID  atomic.Int64
	deaths   chan *remoteAgent
	stop     context.CancelFunc
	bg       sync.WaitGroup
	released atomic.Bool
}

// inMsg is a message and when it arrived (the runner's clock, Unix ns).
type inMsg struct {
	agent.Msg
	at int64
}

// remoteAgent is one agent of the run.
type remoteAgent struct {
	hello   agent.Hello
	offset  agent.Offset
	workers []int  // run-wide worker indices it runs
	shard   *shard // its generator shard; nil when it runs none
	relay   *relay

	lastSeen  atomic.Int64 // Unix ns, the runner's clock
	dead      atomic.Bool
	diedAt    atomic.Int64
	gone      atomic.Bool // released
	lastBatch uint64      // dispatcher only
	gaps      int         // batches missing, dispatcher only
	exited    []string    // worker processes that exited on their own, dispatcher only
}

func (a *remoteAgent) name() string { return a.hello.Name }

// joinAgents finds the agents the scenario's placement asks for, hands each
// its part, and measures their clocks. Without placement it does nothing.
func (v *variantRun) joinAgents(ctx context.Context) error {
	p := v.sc.Placement
	if !p.Enabled() {
		return nil
	}
	if v.env.ctl != nil {
		return v.envErr("placement: agents join the broker they were started with, not a private node this run starts: give bench run the agents' broker (--amqp-url, $AMQP_URL or broker.url)")
	}
	bus, err := agent.Dial(ctx, v.env.directURL)
	if err != nil {
		return fmt.Errorf("%w: join the control exchange: %w", ErrEnvironment, redact.Error(err, v.env.directURL))
	}
	dctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &remote{v: v, bus: bus, log: v.log, hellos: make(chan inMsg, 64), replies: make(chan inMsg, 256),
		faultCh: map[int64]chan agent.FaultDone{}, deaths: make(chan *remoteAgent, 64), stop: stop}
	v.remote = r
	r.bg.Go(func() { r.dispatch(dctx) })
	timeout := p.Timeout
	if timeout == 0 {
		timeout = scenarios.DefaultPlacementTimeout
	}
	if err := r.discover(ctx, timeout); err != nil {
		return err
	}
	if err := r.assign(ctx); err != nil {
		return err
	}
	for _, a := range r.agents {
		if err := r.measureClock(ctx, a); err != nil {
			return err
		}
		v.log.Info("agent", "name", a.name(), "host", a.hello.Host, "workers", len(a.workers), "generator", a.shard != nil, "clock_offset", a.offset.String())
	}
	r.bg.Go(func() { r.watchLiveness(dctx) })
	return nil
}

func (r *remote) send(ctx context.Context, a *remoteAgent, typ string, body any) error {
	m, err := agent.NewMsg(typ, r.v.runID, runnerName, body)
	if err != nil {
		return err
	}
	if err := r.bus.Publish(ctx, agent.AgentKey(a.name()), m); err != nil {
		return fmt.Errorf("send %s to agent %s: %w", typ, a.name(), err)
	}
	return nil
}

// discover asks every agent to say hello, once a second, until the
// placement can be met or timeout passes.
func (r *remote) discover(ctx context.Context, timeout time.Duration) error {
	p := r.v.sc.Placement
	seen := map[string]agent.Hello{}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(discoverEvery)
	defer tick.Stop()
	ask := func() error {
		m, err := agent.NewMsg(agent.TypeDiscover, r.v.runID, runnerName, agent.Discover{ReplyTo: r.bus.Queue()})
		if err != nil {
			return err
		}
		return r.bus.Publish(ctx, agent.KeyAll, m)
	}
	if err := ask(); err != nil {
		return fmt.Errorf("%w: discover agents: %w", ErrEnvironment, err)
	}
	for {
		if w, g, ok := choose(p, seen); ok {
			r.place(w, g)
			return nil
		}
		select {
		case m := <-r.hellos:
			var h agent.Hello
			if m.Decode(&h) == nil && h.Name != "" {
				seen[h.Name] = h
			}
		case <-tick.C:
			if err := ask(); err != nil {
				return fmt.Errorf("%w: discover agents: %w", ErrEnvironment, err)
			}
		case <-deadline.C:
			return r.v.envErr("%s", missingAgents(p, seen, timeout))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// choose picks the agents of each set among those seen and free: the
// first by name that match. One agent may be in both sets.
func choose(p scenarios.Placement, seen map[string]agent.Hello) (workers, gens []agent.Hello, ok bool) {
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	pick := func(set scenarios.AgentSet) []agent.Hello {
		var out []agent.Hello
		for _, n := range names {
			h := seen[n]
			if len(out) < set.Agents && h.Busy == "" && set.Matches(h.Name, h.Labels) {
				out = append(out, h)
			}
		}
		return out
	}
	workers, gens = pick(p.Workers), pick(p.Generators)
	return workers, gens, len(workers) == p.Workers.Agents && len(gens) == p.Generators.Agents
}

// missingAgents says who the run waited for in vain.
func missingAgents(p scenarios.Placement, seen map[string]agent.Hello, timeout time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "placement: not enough agents after %s:", timeout)
	for _, role := range []struct {
		name string
		set  scenarios.AgentSet
	}{{"workers", p.Workers}, {"generators", p.Generators}} {
		if role.set.Agents == 0 {
			continue
		}
		var free, busy []string
		for _, h := range seen {
			switch {
			case !role.set.Matches(h.Name, h.Labels):
			case h.Busy != "":
				busy = append(busy, h.Name+" (busy with run "+h.Busy+")")
			default:
				free = append(free, h.Name)
			}
		}
		slices.Sort(free)
		slices.Sort(busy)
		fmt.Fprintf(&b, " %s wants %s, found %d free", role.name, role.set, len(free))
		if len(free) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(free, ", "))
		}
		if len(busy) > 0 {
			fmt.Fprintf(&b, ", busy: %s", strings.Join(busy, ", "))
		}
		var missing []string
		for _, n := range role.set.Names {
			if _, ok := seen[n]; !ok {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(&b, "; missing: %s", strings.Join(missing, ", "))
		} else if len(free) < role.set.Agents {
			fmt.Fprintf(&b, "; missing: %d more", role.set.Agents-len(free))
		}
		b.WriteString(";")
	}
	var all []string
	for n := range seen {
		all = append(all, n)
	}
	slices.Sort(all)
	if len(all) == 0 {
		all = []string{"none"}
	}
	fmt.Fprintf(&b, " agents that answered: %s (start them with bench agent --amqp-url URL --name NAME --labels k=v)", strings.Join(all, ", "))
	return b.String()
}

// place records the chosen agents and what each runs: worker indices round
// robin, generator shards in order.
func (r *remote) place(workers, gens []agent.Hello) {
	r.agentsMu.Lock()
	defer r.agentsMu.Unlock()
	byName := map[string]*remoteAgent{}
	get := func(h agent.Hello) *remoteAgent {
		if a := byName[h.Name]; a != nil {
			return a
		}
		a := &remoteAgent{hello: h}
		a.lastSeen.Store(time.Now().UnixNano())
		byName[h.Name] = a
		r.agents = append(r.agents, a)
		return a
	}
	for _, h := range workers {
		r.workers = append(r.workers, get(h))
	}
	for i := range r.v.sc.Workers.Processes {
		if len(r.workers) == 0 {
			break // the workers run on the runner's host
		}
		a := r.workers[i%len(r.workers)]
		a.workers = append(a.workers, i)
	}
	for _, h := range gens {
		r.generators = append(r.generators, get(h))
	}
	for _, a := range r.agents {
		a.relay = newRelay(r.v, a)
	}
}
