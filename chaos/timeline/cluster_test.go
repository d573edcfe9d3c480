package timeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/benchmq/bench/chaos/fault"
)

type fakeNode struct {
	i int
	r *recorder
}

func (b fakeNode) call(what string) error                            { return b.r.record(fmt.Sprintf("n%d.%s", b.i, what)) }
func (b fakeNode) Stop(context.Context) error                        { return b.call("stop") }
func (b fakeNode) Start(context.Context) error                       { return b.call("start") }
func (b fakeNode) Restart(context.Context) error                     { return b.call("restart") }
func (b fakeNode) Kill(context.Context) error                        { return b.call("kill") }
func (b fakeNode) Block(context.Context) error                       { return b.call("block") }
func (b fakeNode) Unblock(context.Context) error                     { return b.call("unblock") }
func (b fakeNode) CancelConsumers(_ context.Context, q string) error { return b.call("cancel " + q) }
func (b fakeNode) DeleteQueue(_ context.Context, q string) (int, error) {
	return len(q), b.call("delete " + q)
}
func (b fakeNode) CloseConnections(_ context.Context, except ...string) (int, error) {
	return 0, b.call("close except " + strings.Join(except, ","))
}
func (b fakeNode) RaiseMemoryAlarm(context.Context) error { return b.call("memory_alarm") }
func (b fakeNode) ClearMemoryAlarm(context.Context) error { return b.call("memory_clear") }
func (b fakeNode) RaiseDiskAlarm(context.Context) error   { return b.call("disk_alarm") }
func (b fakeNode) ClearDiskAlarm(context.Context) error   { return b.call("disk_clear") }

// fakeCluster has 3 nodes; node 2 leads every queue. Its topology is node 0's.
type fakeCluster struct{ r *recorder }

func (c fakeCluster) Size() int                                  { return 3 }
func (c fakeCluster) Running(int) bool                           { return true }
func (c fakeCluster) Node(i int) (BrokerTarget, error)           { return fakeNode{i, c.r}, nil }
func (c fakeCluster) NodeTopology(i int) (TopologyTarget, error) { return fakeNode{i, c.r}, nil }
func (c fakeCluster) Leader(_ context.Context, q string) (int, error) {
	if q != "jobs" {
		return 0, fmt.Errorf("leader of %q asked, want jobs", q)
	}
	return 2, nil
}
func (c fakeCluster) Partition(_ context.Context, g [][]int) error {
	return c.r.record("partition " + fault.GroupsString(g))
}
func (c fakeCluster) Heal(context.Context) error { return c.r.record("heal") }

func clusterEnv() *env {
	e := newEnv()
	rec := e.rec
	e.targets.Broker = nil
	e.targets.Cluster = fakeCluster{rec}
	e.targets.Topology = fakeNode{0, rec}
	e.targets.NodeProxies = [][]ProxyTarget{{fakeProxy{"p1", rec}}, {fakeProxy{"p2", rec}}, {fakeProxy{"p3", rec}}}
	e.targets.Queues = Queues{Job: "jobs", Retry: []string{"jobs.retry.1s", "jobs.retry.2s"}, Dead: "jobs.dead"}
	e.targets.KeepConnections = []string{"runner"}
	e.targets.Pick = func(n int) int { return n - 1 }
	return e
}

// TestTimelineCluster runs each cluster and topology fault alone: what it
// calls, when, and which node it says it acted on.
func TestTimelineCluster(t *testing.T) {
	for _, tc := range []struct {
		spec  fault.Spec
		calls []string
		node  int
	}{
		{fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionKill, Node: fault.NodeLeader}, []string{"1s n2.kill", "1s n2.start"}, 2},
		{fault.Spec{At: s, For: 2 * s, Target: fault.TargetBroker, Action: fault.ActionStop, Node: "3"}, []string{"1s n3.stop", "3s n3.start"}, 3},
		{fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionRestart, Node: fault.NodeAny}, []string{"1s n3.restart"}, 3},
		// Node 2 leads; Pick takes the last of the followers 1 and 3.
		{fault.Spec{At: s, For: s, Target: fault.TargetBroker, Action: fault.ActionStop, Node: fault.NodeFollower}, []string{"1s n3.stop", "2s n3.start"}, 3},
		{fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionRestart}, []string{"1s n1.restart"}, 0},
		{fault.Spec{At: s, For: 2 * s, Target: fault.TargetBroker, Action: fault.ActionPartition, Groups: [][]int{{1}, {2, 3}}}, []string{"1s partition [1]|[2,3]", "3s heal"}, 0},
		{fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionDeleteQueue, Queue: fault.QueueRetry}, []string{"1s n0.delete jobs.retry.1s"}, 0},
		{fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionDeleteQueue, Queue: fault.QueueDead}, []string{"1s n0.delete jobs.dead"}, 0},
		{fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionDeleteQueue, Queue: "other"}, []string{"1s n0.delete other"}, 0},
		{fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionCancelConsumers}, []string{"1s n0.cancel jobs"}, 0},
		{fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionCloseConnections}, []string{"1s n0.close except runner"}, 0},
		{fault.Spec{At: s, For: 2 * s, Target: fault.TargetBroker, Action: fault.ActionMemoryAlarm}, []string{"1s n0.memory_alarm", "3s n0.memory_clear"}, 0},
		{fault.Spec{At: s, For: 2 * s, Target: fault.TargetBroker, Action: fault.ActionDiskAlarm, Node: "2"}, []string{"1s n2.disk_alarm", "3s n2.disk_clear"}, 2},
		{fault.Spec{At: s, For: 2 * s, Target: fault.TargetBroker, Action: fault.ActionBlock, Node: "3"}, []string{"1s n3.block", "3s n3.unblock"}, 3},
		{fault.Spec{At: s, Target: fault.TargetBroker, Down: true, Node: "3"}, []string{"1s p3.down", "2s p3.up"}, 3},
		{fault.Spec{At: s, Target: fault.TargetBroker, Down: true}, []string{"1s bp1.down", "1s bp2.down", "2s bp1.up", "2s bp2.up"}, 0},
	} {
		t.Run(tc.spec.Kind()+"/"+tc.spec.Detail(), func(t *testing.T) {
			e := clusterEnv()
			a := runAlone(t, e, tc.spec)
			if got := e.rec.sorted(); !slices.Equal(got, tc.calls) {
				t.Errorf("calls %v, want %v", got, tc.calls)
			}
			if a.Node != tc.node || a.Err != nil {
				t.Errorf("node %d (err %v), want %d", a.Node, a.Err, tc.node)
			}
			// The fake deletes as many messages as the queue's name is long.
			if want := 0; tc.spec.Action == fault.ActionDeleteQueue {
				if _, q, _ := strings.Cut(tc.calls[0], "delete "); a.Deleted != len(q) {
					t.Errorf("deleted %d, want %d", a.Deleted, len(q))
				}
			} else if a.Deleted != want {
				t.Errorf("deleted %d, want 0", a.Deleted)
			}
		})
	}
}

// runAlone runs one fault on e, moving the clock to its start and its end.
func runAlone(t *testing.T, e *env, spec fault.Spec) Applied {
	t.Helper()
	tl, err := New([]fault.Spec{spec}, e.targets, e.clock)
	if err != nil {
		t.Fatalf("new timeline: %v", err)
	}
	ctx := testCtx(t, 10*time.Second)
	done := make(chan []Applied, 1)
	go func() { done <- tl.Run(ctx, e.start) }()
	if !e.n.waitFor(ctx, func() bool { return e.clock.pending() == 1 }) {
		t.Fatal("fault never waited for its start")
	}
	e.clock.Advance(spec.At)
	if hold := spec.Hold(); hold > 0 {
		if !e.n.waitFor(ctx, func() bool { return e.clock.pending() == 1 }) {
			t.Fatal("fault never waited for its end")
		}
		e.clock.Advance(hold)
	}
	select {
	case applied := <-done:
		if len(applied) != 1 {
			t.Fatalf("applied %d, want 1", len(applied))
		}
		return applied[0]
	case <-ctx.Done():
		t.Fatal("Run did not return")
	}
	return Applied{}
}

func TestTimelineClusterAvailability(t *testing.T) {
	part := fault.Spec{At: s, For: s, Target: fault.TargetBroker, Action: fault.ActionPartition, Groups: [][]int{{1}, {2, 3}}}
	single := newEnv()
	if _, err := New([]fault.Spec{part}, single.targets, single.clock); err == nil || !strings.Contains(err.Error(), "needs a managed cluster") {
		t.Errorf("partition of a single node: %v", err)
	}
	del := fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionDeleteQueue, Queue: fault.QueueJob}
	if _, err := New([]fault.Spec{del}, single.targets, single.clock); err == nil || !strings.Contains(err.Error(), "topology") {
		t.Errorf("delete_queue without a topology: %v", err)
	}
	e := clusterEnv()
	kill4 := fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionKill, Node: "4"}
	if _, err := New([]fault.Spec{kill4}, e.targets, e.clock); err == nil || !strings.Contains(err.Error(), "has 3 node(s)") {
		t.Errorf("node 4 of 3: %v", err)
	}
	e.targets.Queues.Retry = nil
	a := runAlone(t, e, fault.Spec{At: s, Target: fault.TargetBroker, Action: fault.ActionDeleteQueue, Queue: fault.QueueRetry})
	if a.Err == nil || !strings.Contains(a.Err.Error(), "no retry tiers") {
		t.Errorf("delete retry without tiers: %v", a.Err)
	}
}

// blockingStart is a node whose Start waits until release is closed.
type blockingStart struct {
	fakeNode
	release chan struct{}
}

func (b blockingStart) Start(ctx context.Context) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.call("start")
}

type slowCluster struct {
	fakeCluster
	release chan struct{}
}

func (c slowCluster) Node(i int) (BrokerTarget, error) {
	return blockingStart{fakeNode{i, c.r}, c.release}, nil
}

// A node restart that outlasts its plan delays the next broker action: a node
// does one thing at a time.
func TestTimelineSerializesBrokerActions(t *testing.T) {
	e := clusterEnv()
	release := make(chan struct{})
	e.targets.Cluster = slowCluster{fakeCluster{e.rec}, release}
	specs := []fault.Spec{
		{At: s, For: s, Target: fault.TargetBroker, Action: fault.ActionKill, Node: "1"},
		{At: 3 * s, Target: fault.TargetBroker, Action: fault.ActionRestart, Node: "2"},
	}
	tl, err := New(specs, e.targets, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	done := make(chan []Applied, 1)
	go func() { done <- tl.Run(ctx, e.start) }()
	// Before 1 s both wait on a timer; after the kill, its undo's timer and
	// the restart's; at 2 s the start blocks; at 3 s the restart waits for it.
	for _, st := range []struct{ pending, calls int }{{2, 0}, {2, 1}, {1, 1}, {0, 1}} {
		if !e.n.waitFor(ctx, func() bool { return e.clock.pending() == st.pending && e.rec.count() == st.calls }) {
			t.Fatalf("at %v: %d timers, calls %v; want %d and %d calls", e.clock.Now().Sub(e.start), e.clock.pending(), e.rec.sorted(), st.pending, st.calls)
		}
		if st.pending > 0 {
			e.clock.Advance(s)
		}
	}
	if got := e.rec.sorted(); !slices.Equal(got, []string{"1s n1.kill"}) {
		t.Fatalf("calls before the start returned: %v", got)
	}
	close(release)
	applied := <-done
	if got := e.rec.sorted(); !slices.Equal(got, []string{"1s n1.kill", "3s n1.start", "3s n2.restart"}) {
		t.Errorf("calls %v", got)
	}
	if len(applied) != 2 || applied[1].Err != nil {
		t.Errorf("applied %+v", applied)
	}
}
