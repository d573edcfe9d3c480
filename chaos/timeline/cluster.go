package timeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/benchmq/bench/chaos/fault"
)

// ClusterTarget is a managed cluster whose nodes faults act on, numbered from 1.
type ClusterTarget interface {
	Size() int
	// Running reports whether node i runs (it may be down from an earlier fault).
	Running(i int) bool
	// Node is node i's controller.
	Node(i int) (BrokerTarget, error)
	// NodeTopology is what acts on node i alone: its alarms.
	NodeTopology(i int) (TopologyTarget, error)
	// Leader is the node leading the queue; an error while it has none.
	Leader(ctx context.Context, queue string) (int, error)
	Partition(ctx context.Context, groups [][]int) error
	Heal(ctx context.Context) error
}

// TopologyTarget changes what the broker holds while its nodes stay up;
// chaos/broker's Topology implements it.
type TopologyTarget interface {
	DeleteQueue(ctx context.Context, queue string) (messages int, err error)
	CloseConnections(ctx context.Context, except ...string) (closed int, err error)
	CancelConsumers(ctx context.Context, queue string) error
	RaiseMemoryAlarm(ctx context.Context) error
	ClearMemoryAlarm(ctx context.Context) error
	RaiseDiskAlarm(ctx context.Context) error
	ClearDiskAlarm(ctx context.Context) error
}

// Queues are the job's queues, which a topology fault's queue: names by role.
type Queues struct {
	Job   string
	Retry []string // the retry tiers, shortest delay first
	Dead  string
}

// resolve turns a fault's queue (a role, a name, or "" for the job's) into a
// queue's name.
func (q Queues) resolve(v string) (string, error) {
	switch v {
	case "", fault.QueueJob:
		return q.Job, nil
	case fault.QueueRetry:
		if len(q.Retry) == 0 {
			return "", errors.New("queue retry: the job's queue has no retry tiers (retry mode inprocess, or a single attempt)")
		}
		return q.Retry[0], nil
	case fault.QueueDead:
		return q.Dead, nil
	}
	return v, nil
}

// leaderWait bounds the wait for a queue's leader when a fault names it.
const leaderWait = 30 * time.Second

// resolveNode picks the node a fault acts on: 0 when it names none (the
// target's default), else a node from 1.
func (tl *Timeline) resolveNode(ctx context.Context, s fault.Spec) (int, error) {
	c := tl.targets.Cluster
	switch s.Node {
	case "":
		return 0, nil
	case fault.NodeLeader:
		if c == nil {
			return 1, nil
		}
		return tl.leader(ctx, c)
	case fault.NodeAny:
		if c == nil {
			return 1, nil
		}
		return tl.pick(c.Size()) + 1, nil
	case fault.NodeFollower:
		if c == nil {
			return 0, errors.New("node follower needs a cluster")
		}
		leader, err := tl.leader(ctx, c)
		if err != nil {
			return 0, err
		}
		var followers []int
		for i := 1; i <= c.Size(); i++ {
			if i != leader && c.Running(i) {
				followers = append(followers, i)
			}
		}
		if len(followers) == 0 {
			return 0, fmt.Errorf("no follower of %q is running", tl.targets.Queues.Job)
		}
		return followers[tl.pick(len(followers))], nil
	}
	n, err := strconv.Atoi(s.Node)
	if err != nil {
		return 0, fmt.Errorf("node %q: %w", s.Node, err)
	}
	return n, nil
}

func (tl *Timeline) pick(n int) int {
	if tl.targets.Pick != nil {
		return tl.targets.Pick(n)
	}
	return rand.IntN(n)
}

// leader asks for the job queue's leader until there is one (an election may
// be under way), for up to leaderWait.
func (tl *Timeline) leader(ctx context.Context, c ClusterTarget) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		i, err := c.Leader(ctx, tl.targets.Queues.Job)
		if err == nil {
			return i, nil
		}
		if !tl.sleepUntil(ctx, tl.clock.Now().Add(200*time.Millisecond)) {
			return 0, fmt.Errorf("find the leader of %q: %w", tl.targets.Queues.Job, err)
		}
	}
}

// nodeStep is a broker action on a cluster or a single node: node is 0 for
// the default (node 1, the first running node for alarms).
func (tl *Timeline) nodeStep(s fault.Spec, node int) step {
	t := tl.targets
	fail := func(err error) step { return step{apply: func(context.Context) error { return err }} }
	switch s.Action {
	case fault.ActionPartition:
		return step{
			apply: func(ctx context.Context) error { return t.Cluster.Partition(ctx, s.Groups) },
			undo:  t.Cluster.Heal,
		}
	case fault.ActionDeleteQueue, fault.ActionCancelConsumers:
		q, err := t.Queues.resolve(s.Queue)
		if err != nil {
			return fail(err)
		}
		if s.Action == fault.ActionCancelConsumers {
			return step{apply: func(ctx context.Context) error { return t.Topology.CancelConsumers(ctx, q) }}
		}
		n := new(int)
		return step{deleted: n, apply: func(ctx context.Context) error {
			var err error
			*n, err = t.Topology.DeleteQueue(ctx, q)
			return err
		}}
	case fault.ActionCloseConnections:
		return step{apply: func(ctx context.Context) error {
			_, err := t.Topology.CloseConnections(ctx, t.KeepConnections...)
			return err
		}}
	case fault.ActionMemoryAlarm, fault.ActionDiskAlarm:
		topo := t.Topology
		if node > 0 && t.Cluster != nil {
			nt, err := t.Cluster.NodeTopology(node)
			if err != nil {
				return fail(err)
			}
			topo = nt
		}
		if s.Action == fault.ActionMemoryAlarm {
			return step{apply: topo.RaiseMemoryAlarm, undo: topo.ClearMemoryAlarm}
		}
		return step{apply: topo.RaiseDiskAlarm, undo: topo.ClearDiskAlarm}
	}
	b := t.Broker
	if t.Cluster != nil {
		nb, err := t.Cluster.Node(max(node, 1))
		if err != nil {
			return fail(err)
		}
		b = nb
	}
	return brokerStep(s, b)
}

// nodeProxies are the proxies a broker toxic or down acts on: every one, or
// those in front of node on a cluster.
func (tl *Timeline) nodeProxies(node int) ([]ProxyTarget, error) {
	t := tl.targets
	if node == 0 || t.Cluster == nil {
		return t.BrokerProxies, nil
	}
	if node > len(t.NodeProxies) {
		return nil, fmt.Errorf("no proxies in front of node %d", node)
	}
	return t.NodeProxies[node-1], nil
}

// availableCluster reports what a cluster or topology fault needs that the
// targets lack.
func availableCluster(s fault.Spec, t Targets) error {
	if s.Target != fault.TargetBroker {
		return nil
	}
	size := 1
	if t.Cluster != nil {
		size = t.Cluster.Size()
	}
	switch s.Action {
	case fault.ActionPartition:
		if t.Cluster == nil {
			return errors.New("a partition needs a managed cluster")
		}
	case fault.ActionDeleteQueue, fault.ActionCloseConnections, fault.ActionCancelConsumers, fault.ActionMemoryAlarm, fault.ActionDiskAlarm:
		if t.Topology == nil {
			return fmt.Errorf("%s needs a broker whose topology bench can change", s.Action)
		}
	}
	for _, p := range s.CheckCluster(size) {
		return errors.New(p.Msg)
	}
	if s.Node != "" && s.NeedsProxy() && t.Cluster != nil && len(t.NodeProxies) < size {
		return errors.New("no proxies in front of each node")
	}
	return nil
}
