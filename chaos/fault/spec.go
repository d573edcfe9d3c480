// Package fault runs a scenario's fault timeline (the faults: key) against
// the environment under test, and measures how the system recovered from each
// fault.
//
// Faults act on three targets: the dependency (through the proxy in front of
// the simulated dependency), the broker (through the proxies between the
// workers and the broker, or on the broker node itself) and the workers (one
// worker process at a time). The targets are small interfaces so the runner
// can plug in whatever provides them.
package fault

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/benchmq/bench/chaos/proxy"
)

// Targets.
const (
	TargetDependency = "dependency"
	TargetBroker     = "broker"
	TargetWorker     = "worker"
)

// Actions.
const (
	ActionRestart = "restart" // broker: graceful restart
	ActionKill    = "kill"    // broker: SIGKILL, then start again after For; worker: SIGKILL one process
	ActionStop    = "stop"    // broker: stop, start again after For; worker: graceful stop of one process
	ActionBlock   = "block"   // broker: block publishers (memory alarm) for For
	ActionPause   = "pause"   // worker: SIGSTOP one process for For
)

// InstantWindow is how long a reset_peer or timeout toxic, or a down proxy,
// stays in place when its fault has no `for`: long enough to catch the
// traffic of a busy connection, short enough to count as a blip.
const InstantWindow = time.Second

// undoTimeout bounds the removal of faults after the run was cancelled; a
// broker start takes several seconds.
const undoTimeout = 90 * time.Second

// Spec is one entry of the scenario's faults: list (DESIGN §4.2).
type Spec struct {
	At  time.Duration // since the load started
	For time.Duration // how long it lasts; 0 for instantaneous faults
	// Target is dependency, broker or worker.
	Target string
	// Toxic is a toxiproxy toxic type applied on the target's proxies.
	Toxic string
	// Stream is up, down or both; "" means down.
	Stream string
	// Toxicity is the share of connections affected, in [0, 1]; 0 means 1.
	Toxicity float64
	// Attrs are the toxic's attributes in toxiproxy units (ms, KB/s, bytes).
	Attrs map[string]int64
	// Down takes the target's proxies down: connections are cut and refused.
	Down bool
	// Action is restart, kill, stop or block for the broker, kill, stop or
	// pause for a worker.
	Action string
}

// ProxyTarget is a proxy faults are applied to; *proxy.Proxy implements it.
type ProxyTarget interface {
	AddToxic(ctx context.Context, t proxy.Toxic) error
	RemoveToxic(ctx context.Context, name string) error
	Down(ctx context.Context) error
	Up(ctx context.Context) error
}

// BrokerTarget controls a managed broker node.
type BrokerTarget interface {
	Stop(ctx context.Context) error
	Start(ctx context.Context) error
	Restart(ctx context.Context) error
	Kill(ctx context.Context) error
	Block(ctx context.Context) error
	Unblock(ctx context.Context) error
}

// WorkerTarget acts on one worker process, which the implementation picks.
// It respawns a killed or stopped worker itself.
type WorkerTarget interface {
	Kill(ctx context.Context) error
	Stop(ctx context.Context) error
	// Pause freezes one worker and returns the function that resumes that
	// same worker.
	Pause(ctx context.Context) (resume func(context.Context) error, err error)
}

// Targets are what faults act on. A nil or empty field means the target is
// not available, and faults that need it are rejected by NewTimeline.
type Targets struct {
	DependencyProxy ProxyTarget
	// BrokerProxies are every proxy between a client and the broker (the
	// workers' and the load generator's); broker toxics apply to all of them.
	BrokerProxies []ProxyTarget
	// Broker is nil when the broker is not managed by the run.
	Broker  BrokerTarget
	Workers WorkerTarget
}

// Kind names what a fault does: the toxic type, "down", or the action.
func (s Spec) Kind() string {
	switch {
	case s.Toxic != "":
		return s.Toxic
	case s.Down:
		return "down"
	default:
		return s.Action
	}
}

// instant reports whether the fault has no natural duration and is held for
// InstantWindow when For is 0.
func (s Spec) instant() bool {
	return s.Down || s.Toxic == "reset_peer" || s.Toxic == "timeout"
}

// hold is how long the fault stays before it is undone.
func (s Spec) hold() time.Duration {
	if s.For == 0 && s.instant() {
		return InstantWindow
	}
	return s.For
}

// Detail describes the fault's parameters, e.g. "latency=1000 stream=both".
func (s Spec) Detail() string {
	var parts []string
	keys := make([]string, 0, len(s.Attrs))
	for k := range s.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.FormatInt(s.Attrs[k], 10))
	}
	if s.Toxic != "" {
		stream := s.Stream
		if stream == "" {
			stream = proxy.StreamDown
		}
		parts = append(parts, "stream="+stream)
		if s.Toxicity != 0 && s.Toxicity != 1 {
			parts = append(parts, "toxicity="+strconv.FormatFloat(s.Toxicity, 'g', -1, 64))
		}
	}
	if s.For == 0 && s.instant() {
		parts = append(parts, "window="+InstantWindow.String())
	} else if s.For > 0 {
		parts = append(parts, "for="+s.For.String())
	}
	return strings.Join(parts, " ")
}

func (s Spec) toxic(name string) proxy.Toxic {
	return proxy.Toxic{Name: name, Type: s.Toxic, Stream: s.Stream, Toxicity: float32(s.Toxicity), Attrs: s.Attrs}
}

// validate checks s against the available targets.
func (s Spec) validate(t Targets) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.At < 0 {
		add("at %v is negative", s.At)
	}
	if s.For < 0 {
		add("for %v is negative", s.For)
	}
	set := 0
	for _, b := range []bool{s.Toxic != "", s.Down, s.Action != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		add("set exactly one of toxic, down and action")
	}
	if s.Toxic != "" {
		// The proxy validates the toxic itself; a placeholder name passes.
		if err := s.toxic("x").Validate(); err != nil {
			errs = append(errs, err)
		}
		if s.For == 0 && !s.instant() {
			add("toxic %s needs a for", s.Toxic)
		}
	} else if s.Stream != "" || s.Toxicity != 0 || len(s.Attrs) > 0 {
		add("stream, toxicity and toxic attributes need a toxic")
	}

	proxies := s.Toxic != "" || s.Down
	switch s.Target {
	case TargetDependency:
		if s.Action != "" {
			add("the dependency has no action %q (use toxic or down)", s.Action)
		}
		if proxies && t.DependencyProxy == nil {
			add("no proxy in front of the dependency")
		}
	case TargetBroker:
		if proxies && len(t.BrokerProxies) == 0 {
			add("no proxy in front of the broker")
		}
		switch s.Action {
		case "":
		case ActionRestart:
			if s.For != 0 {
				add("broker restart takes no for (use stop with a for)")
			}
		case ActionKill, ActionStop:
		case ActionBlock:
			if s.For == 0 {
				add("broker block needs a for")
			}
		default:
			add("unknown broker action %q (want restart, kill, stop or block)", s.Action)
		}
		if s.Action != "" && t.Broker == nil {
			add("broker %s needs a managed broker", s.Action)
		}
	case TargetWorker:
		if proxies {
			add("workers take no toxic or down (use action kill, stop or pause)")
		}
		switch s.Action {
		case "":
		case ActionKill, ActionStop:
			if s.For != 0 {
				add("worker %s takes no for (the worker is respawned)", s.Action)
			}
		case ActionPause:
			if s.For == 0 {
				add("worker pause needs a for")
			}
		default:
			add("unknown worker action %q (want kill, stop or pause)", s.Action)
		}
		if s.Action != "" && t.Workers == nil {
			add("no workers to %s", s.Action)
		}
	default:
		add("unknown target %q (want dependency, broker or worker)", s.Target)
	}
	return errors.Join(errs...)
}

// exclusive reports whether two such faults cannot overlap: a proxy cannot be
// down twice, and the broker node does one thing at a time.
func (s Spec) exclusive() (key string, ok bool) {
	switch {
	case s.Down:
		return "down " + s.Target, true
	case s.Target == TargetBroker && s.Action != "":
		return "broker action", true
	}
	return "", false
}

func validateAll(specs []Spec, t Targets) error {
	var errs []error
	for i, s := range specs {
		if err := s.validate(t); err != nil {
			errs = append(errs, fmt.Errorf("fault %d (%s at %v): %w", i+1, s.Kind(), s.At, err))
		}
	}
	for i, a := range specs {
		ka, ok := a.exclusive()
		if !ok {
			continue
		}
		for j := i + 1; j < len(specs); j++ {
			b := specs[j]
			if kb, ok := b.exclusive(); !ok || kb != ka {
				continue
			}
			if a.At <= b.At+b.hold() && b.At <= a.At+a.hold() {
				errs = append(errs, fmt.Errorf("faults %d and %d overlap: one %s at a time", i+1, j+1, ka))
			}
		}
	}
	return errors.Join(errs...)
}

// sortedIndex returns spec indices ordered by At, for stable output.
func sortedIndex(specs []Spec) []int {
	idx := make([]int, len(specs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(specs[a].At, specs[b].At) })
	return idx
}
