// Package timeline runs a scenario's fault timeline (the faults: key) against
// the environment under test, and measures how the system recovered from each
// fault. What a fault is, and which faults are valid, is chaos/fault's.
//
// Faults act on three targets: the dependency (through the proxy in front of
// the simulated dependency), the broker (through the proxies between the
// workers and the broker, or on the broker node itself) and the workers (one
// worker process at a time). The targets are small interfaces so the runner
// can plug in whatever provides them.
package timeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/chaos/proxy"
)

// undoTimeout bounds the removal of faults after the run was cancelled; a
// broker start takes several seconds.
const undoTimeout = 90 * time.Second

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
	DependencyProxy ProxyTarget // the simulated dependency's
	// Dependencies are the proxies of the named real dependencies (a fault's
	// Name picks one).
	Dependencies map[string]ProxyTarget
	// BrokerProxies are every proxy between a client and the broker (the
	// workers' and the load generator's); broker toxics apply to all of them.
	BrokerProxies []ProxyTarget
	// Broker is nil when the broker is not managed by the run.
	Broker  BrokerTarget
	Workers WorkerTarget

	// Cluster is set when the broker is a managed cluster; node faults act
	// on its nodes, and Broker is unused.
	Cluster ClusterTarget
	// NodeProxies are, per node of the cluster (node i at i-1), the proxies
	// in front of it: a broker toxic or down with a node acts on those.
	NodeProxies [][]ProxyTarget
	// Topology applies topology faults; nil when the broker has none.
	Topology TopologyTarget
	// Queues name the job's queues for delete_queue and cancel_consumers,
	// and Queues.Job the queue whose leader node: leader means.
	Queues Queues
	// KeepConnections are the client-provided connection names that
	// close_connections spares (the runner's own).
	KeepConnections []string
	// Pick returns a number in [0, n) for node: any; nil means math/rand.
	Pick func(n int) int
}

func toxic(s fault.Spec, name string) proxy.Toxic {
	return proxy.Toxic{Name: name, Type: s.Toxic, Stream: s.Stream, Toxicity: float32(s.Toxicity), Attrs: s.Attrs}
}

// available reports what s needs that the targets lack.
func available(s fault.Spec, t Targets) error {
	switch {
	case s.Target == fault.TargetDependency && s.Name != "" && t.Dependencies[s.Name] == nil:
		return fmt.Errorf("no proxy in front of dependency %s", s.Name)
	case s.Target == fault.TargetDependency && s.Name == "" && t.DependencyProxy == nil:
		return errors.New("no proxy in front of the dependency")
	case s.Target == fault.TargetBroker && s.NeedsProxy() && len(t.BrokerProxies) == 0:
		return errors.New("no proxy in front of the broker")
	case s.NeedsManagedBroker() && t.Broker == nil && t.Cluster == nil && !isTopology(s.Action):
		return fmt.Errorf("broker %s needs a managed broker", s.Action)
	case s.Target == fault.TargetWorker && t.Workers == nil:
		return fmt.Errorf("no workers to %s", s.Action)
	}
	return nil
}

func validateAll(specs []fault.Spec, t Targets) error {
	var errs []error
	for i, s := range specs {
		// One line per problem, each naming its fault.
		problems := []error{available(s, t), availableCluster(s, t)}
		for _, p := range s.Problems() {
			problems = append(problems, p)
		}
		for _, err := range problems {
			if err != nil {
				errs = append(errs, fmt.Errorf("fault %d (%s at %v): %w", i+1, s.Kind(), s.At, err))
			}
		}
	}
	for _, o := range fault.Overlaps(specs) {
		errs = append(errs, o)
	}
	return errors.Join(errs...)
}

// isTopology reports whether a broker action changes what the broker holds
// (Targets.Topology) rather than acting on a node.
func isTopology(action string) bool {
	switch action {
	case fault.ActionDeleteQueue, fault.ActionCloseConnections, fault.ActionCancelConsumers, fault.ActionMemoryAlarm, fault.ActionDiskAlarm:
		return true
	}
	return false
}

// sortedIndex returns spec indices ordered by At, for stable output.
func sortedIndex(specs []fault.Spec) []int {
	idx := make([]int, len(specs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(specs[a].At, specs[b].At) })
	return idx
}
