package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/brokertest"
)

// reachTimeout bounds one connection attempt between nodes: across a
// partition it must time out (nothing answers); otherwise it connects at once.
const reachTimeout = time.Second

func testClusterPartition(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := wholeCluster(ctx, t)
	if c.Network() != broker.NetworkNetns {
		err := c.Partition(ctx, [][]int{{1}, {2, 3}})
		if !errors.Is(err, broker.ErrUnsupported) {
			t.Fatalf("Partition on %s: err = %v, want ErrUnsupported", c.Network(), err)
		}
		t.Skipf("the cluster runs on %s: partitions need network namespaces", c.Network())
	}
	assertReach := func(from, to int, want bool) {
		t.Helper()
		err := c.Reachable(ctx, from, to, reachTimeout)
		if want && err != nil {
			t.Errorf("node %d cannot reach node %d: %v", from, to, err)
		}
		if !want && err == nil {
			t.Errorf("node %d reaches node %d across the partition", from, to)
		}
	}
	for from := 1; from <= 3; from++ {
		for to := 1; to <= 3; to++ {
			assertReach(from, to, true)
		}
	}

	// Bad groups are refused and change nothing.
	for _, bad := range [][][]int{{{1, 2, 3}}, {{1}, {2}}, {{1, 2}, {2, 3}}, {{1}, {2, 3, 4}}, {{1}, {}, {2, 3}}} {
		if err := c.Partition(ctx, bad); err == nil {
			t.Errorf("Partition(%v) succeeded", bad)
		}
	}
	assertReach(1, 2, true)

	// Isolate a node that does not lead the queue, and publish through it:
	// the message must reach the leader across the partition to be confirmed.
	q := brokertest.Name(t, "partition")
	declare(ctx, t, c.URL(), q, "quorum")
	l := leader(ctx, t, c, q)
	lone := otherThan(c, l)
	var rest []int
	for i := 1; i <= 3; i++ {
		if i != lone {
			rest = append(rest, i)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Heal(ctx); err != nil {
			t.Errorf("heal: %v", err)
		}
	})
	if err := c.Partition(ctx, [][]int{{lone}, rest}); err != nil {
		t.Fatal(err)
	}
	if got := c.Partitioned(); len(got) != 2 {
		t.Errorf("Partitioned = %v", got)
	}
	for _, r := range rest {
		assertReach(lone, r, false)
		assertReach(r, lone, false)
	}
	assertReach(rest[0], rest[1], true)
	// Clients on the host still reach the lone node.
	if _, err := broker.ServerVersion(ctx, nodeURL(t, c, lone)); err != nil {
		t.Errorf("a client cannot reach node %d during the partition: %v", lone, err)
	}
	dc := publishDeferred(ctx, t, nodeURL(t, c, lone), q, "across")
	select {
	case <-dc.Done():
		t.Fatalf("a publish through node %d was confirmed (ack %v) although it is cut off from the leader, node %d", lone, dc.Acked(), l)
	case <-time.After(3 * time.Second):
	}

	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.Partitioned(); got != nil {
		t.Errorf("Partitioned after Heal = %v", got)
	}
	for _, r := range rest {
		assertReach(lone, r, true)
		assertReach(r, lone, true)
	}
	// The distribution link comes back, and with it the confirm.
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Errorf("publish through node %d not confirmed after the heal: ack=%v, %v", lone, ok, err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}
