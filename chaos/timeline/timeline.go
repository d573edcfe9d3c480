package timeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/benchmq/bench/chaos/fault"
)

// Applied is one fault as it really happened.
type Applied struct {
	Spec fault.Spec
	// Start is when the fault was applied, End when it was undone (or, for
	// an instantaneous action, when the action returned).
	Start, End time.Time
	Kind       string // e.g. latency, down, restart, kill
	Detail     string
	// Node is the cluster node the fault acted on (node: leader and any
	// resolved when it started); 0 when it named none.
	Node int
	// Deleted is how many ready messages a delete_queue took with the queue.
	Deleted int
	// Err is set when the fault could not be applied or undone.
	Err error
}

// Timeline applies a scenario's faults at their times.
type Timeline struct {
	specs   []fault.Spec
	targets Targets
	clock   Clock
	// broker is held by a broker action from its start to its undo: a node
	// does one thing at a time, and a node's restart may take longer than
	// the scenario planned (a busy machine), so the next action waits for it.
	broker chan struct{}
}

// New checks specs against the available targets and returns the
// timeline. A nil clock means the wall clock.
func New(specs []fault.Spec, t Targets, clock Clock) (*Timeline, error) {
	if err := validateAll(specs, t); err != nil {
		return nil, fmt.Errorf("check faults: %w", err)
	}
	if clock == nil {
		clock = RealClock()
	}
	return &Timeline{specs: specs, targets: t, clock: clock, broker: make(chan struct{}, 1)}, nil
}

// Run applies each fault at loadStart+At and undoes it at loadStart+At+For
// (fault.BriefWindow for a reset_peer, timeout or down without a for); faults
// that overlap run concurrently. It returns once every fault has run, or
// when ctx is done, after undoing every fault still in place. The result
// holds the faults that were started, in the order of their At.
func (tl *Timeline) Run(ctx context.Context, loadStart time.Time) []Applied {
	results := make([]*Applied, len(tl.specs))
	var wg sync.WaitGroup
	for i, s := range tl.specs {
		wg.Go(func() { results[i] = tl.runOne(ctx, i, s, loadStart) })
	}
	wg.Wait()
	var out []Applied
	for _, i := range sortedIndex(tl.specs) {
		if results[i] != nil {
			out = append(out, *results[i])
		}
	}
	return out
}

// sleepUntil waits for the clock to reach t; it reports false if ctx ended
// first.
func (tl *Timeline) sleepUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(tl.clock.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := tl.clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// step is how one fault is applied and undone; undo is nil for faults that
// are over when apply returns.
type step struct {
	apply func(context.Context) error
	undo  func(context.Context) error
	// deleted, if set, is where a delete_queue puts its count.
	deleted *int
}

func (tl *Timeline) runOne(ctx context.Context, i int, s fault.Spec, loadStart time.Time) *Applied {
	if !tl.sleepUntil(ctx, loadStart.Add(s.At)) {
		return nil
	}
	if s.NeedsManagedBroker() || s.Action == fault.ActionDeleteQueue {
		select {
		case tl.broker <- struct{}{}:
			defer func() { <-tl.broker }()
		case <-ctx.Done():
			return nil
		}
	}
	a := &Applied{Spec: s, Kind: s.Kind(), Detail: s.Detail(), Start: tl.clock.Now()}
	node, err := tl.resolveNode(ctx, s)
	if err != nil {
		a.Err = fmt.Errorf("apply %s on %s: %w", a.Kind, s.Target, err)
		a.End = tl.clock.Now()
		return a
	}
	a.Node = node
	st := tl.step(i, s, node)
	err = st.apply(ctx)
	if st.deleted != nil {
		a.Deleted = *st.deleted
	}
	if err != nil {
		a.Err = fmt.Errorf("apply %s on %s: %w", a.Kind, s.Target, err)
		a.End = tl.clock.Now()
		return a
	}
	if st.undo != nil {
		tl.sleepUntil(ctx, loadStart.Add(s.At+s.Hold()))
		undoCtx := ctx
		if ctx.Err() != nil {
			// The run is over, but the fault must not outlive it.
			var cancel context.CancelFunc
			undoCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
			defer cancel()
		}
		if err := st.undo(undoCtx); err != nil {
			a.Err = fmt.Errorf("undo %s on %s: %w", a.Kind, s.Target, err)
		}
	}
	a.End = tl.clock.Now()
	return a
}

func (tl *Timeline) step(i int, s fault.Spec, node int) step {
	switch s.Target {
	case fault.TargetDependency:
		if s.Name != "" {
			return proxyStep(i, s, []ProxyTarget{tl.targets.Dependencies[s.Name]})
		}
		return proxyStep(i, s, []ProxyTarget{tl.targets.DependencyProxy})
	case fault.TargetBroker:
		if s.Action == "" {
			ps, err := tl.nodeProxies(node)
			if err != nil {
				return step{apply: func(context.Context) error { return err }}
			}
			return proxyStep(i, s, ps)
		}
		return tl.nodeStep(s, node)
	default:
		return workerStep(s, tl.targets.Workers)
	}
}

func proxyStep(i int, s fault.Spec, targets []ProxyTarget) step {
	name := fmt.Sprintf("fault%d-%s", i+1, s.Kind())
	var on, off func(context.Context, ProxyTarget) error
	if s.Down {
		on = func(ctx context.Context, p ProxyTarget) error { return p.Down(ctx) }
		off = func(ctx context.Context, p ProxyTarget) error { return p.Up(ctx) }
	} else {
		toxic := toxic(s, name)
		on = func(ctx context.Context, p ProxyTarget) error { return p.AddToxic(ctx, toxic) }
		off = func(ctx context.Context, p ProxyTarget) error { return p.RemoveToxic(ctx, name) }
	}
	var done []ProxyTarget // the proxies the fault reached, to undo
	undo := func(ctx context.Context) error {
		var errs []error
		for _, p := range done {
			if err := off(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	apply := func(ctx context.Context) error {
		for _, p := range targets {
			if err := on(ctx, p); err != nil {
				// Leave nothing half-applied behind.
				return errors.Join(err, undo(context.WithoutCancel(ctx)))
			}
			done = append(done, p)
		}
		return nil
	}
	return step{apply: apply, undo: undo}
}

func brokerStep(s fault.Spec, b BrokerTarget) step {
	switch s.Action {
	case fault.ActionRestart:
		return step{apply: b.Restart}
	case fault.ActionKill:
		return step{apply: b.Kill, undo: b.Start}
	case fault.ActionStop:
		return step{apply: b.Stop, undo: b.Start}
	default: // block
		return step{apply: b.Block, undo: b.Unblock}
	}
}

func workerStep(s fault.Spec, w WorkerTarget) step {
	switch s.Action {
	case fault.ActionKill:
		return step{apply: w.Kill}
	case fault.ActionStop:
		return step{apply: w.Stop}
	default: // pause
		var resume func(context.Context) error
		return step{
			apply: func(ctx context.Context) error {
				r, err := w.Pause(ctx)
				resume = r
				return err
			},
			undo: func(ctx context.Context) error {
				if resume == nil {
					return errors.New("pause returned no resume function")
				}
				return resume(ctx)
			},
		}
	}
}
