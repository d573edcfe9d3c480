package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/brokertest"
)

// TestCluster checks the binary's cluster (brokertest.Cluster), one subtest
// per capability, in order. Each starts from a whole cluster and leaves it
// whole, through t.Cleanup, so a failure in one does not fail the next for
// the wrong reason. It runs in parallel with the tests of other brokers
// (TestManaged, the cluster on ports): most of its time is spent waiting for
// nodes to boot.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a 3-node rabbitmq-server cluster")
	}
	t.Parallel()
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"boot", testClusterBoot},
		{"leader", testClusterLeader},
		{"kill leader", testClusterKillLeader},
		{"stop start", testClusterStopStart},
		{"partition", testClusterPartition},
		{"topology supports", testClusterTopologySupports},
		{"topology delete queue", testClusterTopologyDeleteQueue},
		{"topology close connections", testClusterTopologyCloseConnections},
		{"topology alarms", testClusterTopologyAlarms},
		{"topology cancel consumers", testClusterTopologyCancelConsumers},
	} {
		t.Run(tc.name, tc.test)
	}
}

func wholeCluster(ctx context.Context, t *testing.T) *broker.Cluster {
	t.Helper()
	c := brokertest.Cluster(t)
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// restoreNode starts node i again at the end of the test if it is down then.
func restoreNode(t *testing.T, c *broker.Cluster, i int) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if !c.Running(i) {
			if err := c.Start(ctx, i); err != nil {
				t.Errorf("start node %d again: %v", i, err)
			}
		}
		if err := c.WaitHealthy(ctx); err != nil {
			t.Errorf("cluster not whole after the test: %v", err)
		}
	})
}

func nodeURL(t *testing.T, c *broker.Cluster, i int) string {
	t.Helper()
	m, err := c.Node(i)
	if err != nil {
		t.Fatal(err)
	}
	return m.URL()
}

// otherThan returns the lowest node that is not one of not.
func otherThan(c *broker.Cluster, not ...int) int {
	for i := 1; i <= c.Size(); i++ {
		skip := false
		for _, n := range not {
			skip = skip || n == i
		}
		if !skip {
			return i
		}
	}
	return 0
}

func testClusterBoot(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := wholeCluster(ctx, t)
	var _ broker.Broker = c
	if c.Size() != 3 || c.Kind() != broker.KindCluster {
		t.Errorf("Size, Kind = %d, %q", c.Size(), c.Kind())
	}
	_, ipErr := exec.LookPath("ip")
	if os.Geteuid() == 0 && ipErr == nil && c.Network() != broker.NetworkNetns {
		t.Errorf("Network = %q although namespaces can be made here", c.Network())
	}
	urls := c.URLs()
	if len(urls) != 3 || c.URL() != urls[0] {
		t.Fatalf("URL %q, URLs %q", c.URL(), urls)
	}
	hosts, names := map[string]bool{}, map[string]bool{}
	for i, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		hosts[pu.Host] = true
		if c.Network() == broker.NetworkNetns && pu.Port() != "5672" {
			t.Errorf("node %d listens on %s; in its own namespace it has the standard port", i+1, pu.Host)
		}
		if pu.User.Username() == "guest" {
			t.Errorf("node %d URL uses guest, who may only log in over loopback", i+1)
		}
		m, err := c.Node(i + 1)
		if err != nil {
			t.Fatal(err)
		}
		names[m.NodeName()] = true
		if v, err := m.Version(ctx); err != nil || !strings.HasPrefix(v, "3.") {
			t.Errorf("node %d: Version = %q, %v", i+1, v, err)
		}
		// The cluster's own user replaces guest.
		guest := strings.Replace(u, pu.User.String()+"@", "guest:guest@", 1)
		if _, err := broker.ServerVersion(ctx, guest); err == nil {
			t.Errorf("node %d lets guest in", i+1)
		}
	}
	if len(hosts) != 3 || len(names) != 3 {
		t.Errorf("nodes share addresses or names: %v %v", hosts, names)
	}
	if _, err := c.Node(4); err == nil {
		t.Error("Node(4) of a 3-node cluster succeeded")
	}
	if brokertest.Cluster(t) != c {
		t.Error("brokertest.Cluster does not share the binary's cluster")
	}
	t.Logf("boot time %v on %s", c.BootTime().Round(100*time.Millisecond), c.Network())
}

func TestClusterConfigValidation(t *testing.T) {
	ctx := testContext(t, 5*time.Second)
	_, err := broker.StartCluster(ctx, broker.ClusterConfig{Nodes: -1, Network: "wifi", NetTicktime: 1500 * time.Millisecond, PartitionHandling: "hope"})
	if err == nil {
		t.Fatal("StartCluster accepted a bad config")
	}
	for _, want := range []string{"nodes -1", `network "wifi"`, "net ticktime", `partition handling "hope"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want it to mention %s", err, want)
		}
	}
}

func testClusterLeader(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := wholeCluster(ctx, t)

	classic := brokertest.Name(t, "classic")
	declare(ctx, t, nodeURL(t, c, 2), classic, "classic")
	// A classic queue lives on the node of the connection that declared it.
	if l, err := c.Leader(ctx, classic); err != nil || l != 2 {
		t.Errorf("Leader(classic queue declared on node 2) = %d, %v", l, err)
	}

	qq := brokertest.Name(t, "quorum")
	declare(ctx, t, c.URL(), qq, "quorum")
	l := leader(ctx, t, c, qq)
	// Ra itself, asked through the CLI, must agree.
	if want := raLeader(ctx, t, c, qq); l != want {
		t.Errorf("Leader = %d, rabbitmq-queues quorum_status says %d", l, want)
	}

	if _, err := c.Leader(ctx, brokertest.Name(t, "missing")); !errors.Is(err, broker.ErrNoQueue) {
		t.Errorf("Leader(missing queue) err = %v, want ErrNoQueue", err)
	}
}

// raLeader asks rabbitmq-queues which node leads the quorum queue.
func raLeader(ctx context.Context, t *testing.T, c *broker.Cluster, queue string) int {
	t.Helper()
	m, err := c.Node(1)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", m.NodeName()}
	if m.Info().Longnames {
		args = append(args, "--longnames")
	}
	out, err := exec.CommandContext(ctx, "rabbitmq-queues", append(args, "quorum_status", queue, "--formatter", "json")...).Output()
	if err != nil {
		t.Fatalf("rabbitmq-queues quorum_status: %v", err)
	}
	var members []map[string]any
	if err := json.Unmarshal(out[strings.IndexByte(string(out), '['):], &members); err != nil {
		t.Fatalf("parse quorum_status %q: %v", out, err)
	}
	for _, mem := range members {
		if mem["Raft State"] != "leader" {
			continue
		}
		for i := 1; i <= c.Size(); i++ {
			n, _ := c.Node(i)
			if n.NodeName() == mem["Node Name"] {
				return i
			}
		}
	}
	t.Fatalf("quorum_status names no leader: %s", out)
	return 0
}

func testClusterKillLeader(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := wholeCluster(ctx, t)
	q := brokertest.Name(t, "kill-leader")
	declare(ctx, t, c.URL(), q, "quorum")
	old := leader(ctx, t, c, q)
	other := otherThan(c, old)
	sub := consume(ctx, t, nodeURL(t, c, other), q)
	publishConfirmed(ctx, t, nodeURL(t, c, other), q, "before")
	sub.receive(ctx, t, "before")

	restoreNode(t, c, old)
	if err := c.Kill(ctx, old); err != nil {
		t.Fatal(err)
	}
	if c.Running(old) {
		t.Fatalf("node %d still runs after Kill", old)
	}
	if _, err := broker.ServerVersion(ctx, nodeURL(t, c, old)); err == nil {
		t.Fatalf("node %d still answers after Kill", old)
	}
	var now int
	eventually(ctx, t, "a new leader", func() error {
		l, err := c.Leader(ctx, q)
		if err != nil {
			return err
		}
		if l == old {
			return fmt.Errorf("the leader is still the killed node %d", old)
		}
		now = l
		return nil
	})
	t.Logf("leader moved from node %d to node %d", old, now)

	// The queue works on: a confirmed message reaches the consumer, which
	// RabbitMQ did not cancel (a leader change does not cancel consumers of
	// a quorum queue).
	publishConfirmed(ctx, t, nodeURL(t, c, other), q, "after")
	sub.receive(ctx, t, "after")
	select {
	case tag := <-sub.cancels:
		t.Errorf("the consumer was cancelled (%s) by a leader change", tag)
	default:
	}

	if err := c.Start(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}

func testClusterStopStart(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := wholeCluster(ctx, t)
	q := brokertest.Name(t, "stop-start")
	declare(ctx, t, c.URL(), q, "quorum")
	publishConfirmed(ctx, t, c.URL(), q, "kept")

	const n = 3
	restoreNode(t, c, n)
	if err := c.Stop(ctx, n); err != nil {
		t.Fatal(err)
	}
	if c.Running(n) {
		t.Fatalf("node %d still runs after Stop", n)
	}
	if _, err := broker.ServerVersion(ctx, nodeURL(t, c, n)); err == nil {
		t.Fatalf("node %d still answers after Stop", n)
	}
	// Two of three members: the quorum queue still takes messages.
	publishConfirmed(ctx, t, c.URL(), q, "while node 3 is down")

	if err := c.Start(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	// The restarted node serves the queue with everything in it.
	if got := messages(ctx, t, nodeURL(t, c, n), q); got != 2 {
		t.Errorf("queue holds %d messages after node %d restarted, want 2", got, n)
	}
}
