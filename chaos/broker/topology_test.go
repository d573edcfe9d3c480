package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/brokertest"
)

// The checks below run against a single managed node and an external broker
// (from TestManaged) and against the cluster (the TestClusterTopology tests).

// checkSupports asserts which ops top supports.
func checkSupports(t *testing.T, top broker.Topology, unsupported ...broker.TopologyOp) {
	t.Helper()
	for _, op := range broker.TopologyOps {
		want := false
		for _, u := range unsupported {
			want = want || u == op
		}
		err := top.Supports(op)
		if got := errors.Is(err, broker.ErrUnsupported); got != want {
			t.Errorf("Supports(%s) = %v; want unsupported %v", op, err, want)
		}
	}
	if err := top.Supports("reboot_datacenter"); !errors.Is(err, broker.ErrUnsupported) {
		t.Errorf("Supports(unknown op) = %v", err)
	}
}

// checkDeleteQueue deletes a queue of type qtype with messages, then a
// missing one, then a classic queue with a consumer, which the broker
// cancels. (RabbitMQ 3.10.8 does not always send basic.cancel to the
// consumers of a deleted quorum queue on a cluster: seen about once in ten
// deletes on a fresh cluster, in both network modes, never on one node. The
// consumer then waits for deliveries that never come.)
func checkDeleteQueue(ctx context.Context, t *testing.T, top broker.Topology, url, qtype string) {
	t.Helper()
	full := brokertest.Name(t, "delete-full")
	declare(ctx, t, url, full, qtype)
	for _, b := range []string{"a", "b", "c"} {
		publishConfirmed(ctx, t, url, full, b)
	}
	n, err := top.DeleteQueue(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("DeleteQueue returned %d messages, want 3", n)
	}
	if _, err := top.DeleteQueue(ctx, full); !errors.Is(err, broker.ErrNoQueue) {
		t.Errorf("second DeleteQueue: err = %v, want ErrNoQueue", err)
	}

	consumed := brokertest.Name(t, "delete-consumed")
	declare(ctx, t, url, consumed, "classic")
	sub := consume(ctx, t, url, consumed)
	if _, err := top.DeleteQueue(ctx, consumed); err != nil {
		t.Fatal(err)
	}
	sub.waitCancelled(ctx, t)
}

// checkCloseConnections opens a connection to each of urls and one named
// "keep-me"; CloseConnections("keep-me") must close the others only. It waits
// until the management API at mgmtURL lists them: the API learns of a
// connection within the node's statistics interval (5s), and only closes
// connections it knows.
func checkCloseConnections(ctx context.Context, t *testing.T, top broker.Topology, mgmtURL string, urls ...string) {
	t.Helper()
	var closing []<-chan *amqp.Error
	var names []string
	for i, u := range urls {
		name := brokertest.Name(t, "close-me")
		conn, err := amqp.DialConfig(u, amqp.Config{Properties: amqp.Table{"connection_name": name}})
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		t.Cleanup(func() { conn.Close() })
		closing = append(closing, conn.NotifyClose(make(chan *amqp.Error, 1)))
		names = append(names, name)
	}
	keep, err := amqp.DialConfig(urls[0], amqp.Config{Properties: amqp.Table{"connection_name": "keep-me"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keep.Close() })
	kept := keep.NotifyClose(make(chan *amqp.Error, 1))
	waitListed(ctx, t, mgmtURL, urls[0], append(names, "keep-me")...)

	n, err := top.CloseConnections(ctx, "keep-me")
	if err != nil {
		t.Fatal(err)
	}
	if n < len(urls) {
		t.Errorf("CloseConnections closed %d connections, want at least %d", n, len(urls))
	}
	for i, c := range closing {
		select {
		case e := <-c:
			if e == nil || e.Code != amqp.ConnectionForced {
				t.Errorf("connection %d closed with %v, want connection-forced", i+1, e)
			}
		case <-ctx.Done():
			t.Fatalf("connection %d was not closed", i+1)
		}
	}
	// The broker closed the others first: had it closed this one, its close
	// would be on its way too. It must still work.
	ch, err := keep.Channel()
	if err != nil {
		t.Fatalf("the kept connection does not work: %v", err)
	}
	ch.Close()
	select {
	case e := <-kept:
		t.Errorf("the kept connection was closed: %v", e)
	default:
	}
}

// waitListed waits until the management API lists connections with every
// one of names, asking with amqpURL's credentials.
func waitListed(ctx context.Context, t *testing.T, mgmtURL, amqpURL string, names ...string) {
	t.Helper()
	u, err := amqp.ParseURI(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the management API lists the connections", func() error {
		// With name in the columns no entry is empty (an empty one is [], not {}).
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, mgmtURL+"/api/connections?columns=name,user_provided_name", nil)
		if err != nil {
			return err
		}
		req.SetBasicAuth(u.Username, u.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var listed []struct {
			Name string `json:"user_provided_name"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, l := range listed {
			seen[l.Name] = true
		}
		for _, n := range names {
			if !seen[n] {
				return fmt.Errorf("%s is not listed yet", n)
			}
		}
		return nil
	})
}

// checkAlarm raises an alarm: a publisher is blocked; clears it: unblocked.
func checkAlarm(ctx context.Context, t *testing.T, url string, raise, clear func(context.Context) error) {
	t.Helper()
	conn := dial(ctx, t, url)
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	cleared := false
	t.Cleanup(func() {
		if cleared {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := clear(ctx); err != nil {
			t.Errorf("clear alarm: %v", err)
		}
	})
	if err := raise(ctx); err != nil {
		t.Fatal(err)
	}
	// The broker blocks a connection when it next publishes.
	if err := ch.PublishWithContext(ctx, "", brokertest.Name(t, "nowhere"), false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitBlocked(ctx, t, blocked, true)
	if err := clear(ctx); err != nil {
		t.Fatal(err)
	}
	cleared = true
	waitBlocked(ctx, t, blocked, false)
}

func testClusterTopologySupports(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := wholeCluster(ctx, t)
	checkSupports(t, c.Topology())
}

func testClusterTopologyDeleteQueue(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := wholeCluster(ctx, t)
	checkDeleteQueue(ctx, t, c.Topology(), nodeURL(t, c, 2), "quorum")
}

func testClusterTopologyCloseConnections(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := wholeCluster(ctx, t)
	m, err := c.Node(1)
	if err != nil {
		t.Fatal(err)
	}
	// One API lists the connections of every node.
	checkCloseConnections(ctx, t, c.Topology(), m.ManagementURL(), c.URLs()...)
}

func testClusterTopologyAlarms(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := wholeCluster(ctx, t)
	top := c.Topology()
	// Raised on one node (node 1), felt by a publisher on another.
	t.Run("memory", func(t *testing.T) {
		checkAlarm(ctx, t, nodeURL(t, c, 2), top.RaiseMemoryAlarm, top.ClearMemoryAlarm)
	})
	t.Run("disk", func(t *testing.T) {
		checkAlarm(ctx, t, nodeURL(t, c, 2), top.RaiseDiskAlarm, top.ClearDiskAlarm)
	})
}

func testClusterTopologyCancelConsumers(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := wholeCluster(ctx, t)
	top := c.Topology()

	const home = 2
	q := brokertest.Name(t, "cancel")
	declare(ctx, t, nodeURL(t, c, home), q, "classic")
	for _, b := range []string{"a", "b", "c", "d", "e"} {
		publishConfirmed(ctx, t, nodeURL(t, c, home), q, b)
	}
	// Consumers on the other nodes; each holds an unacked message.
	var subs []consumer
	for _, i := range []int{1, 3} {
		sub := consume(ctx, t, nodeURL(t, c, i), q)
		select {
		case <-sub.deliveries:
		case <-ctx.Done():
			t.Fatal("no delivery")
		}
		subs = append(subs, sub)
	}
	restoreNode(t, c, home)
	if err := top.CancelConsumers(ctx, q); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		s.waitCancelled(ctx, t)
	}
	if !c.Running(home) {
		t.Fatalf("node %d, the queue's, is not running again", home)
	}
	// Nothing lost: the unacked deliveries went back to the queue.
	if got := messages(ctx, t, nodeURL(t, c, home), q); got != 5 {
		t.Errorf("queue holds %d messages after its consumers were cancelled, want 5", got)
	}

	qq := brokertest.Name(t, "cancel-quorum")
	declare(ctx, t, c.URL(), qq, "quorum")
	if err := top.CancelConsumers(ctx, qq); !errors.Is(err, broker.ErrUnsupported) {
		t.Errorf("CancelConsumers(quorum queue) = %v, want ErrUnsupported", err)
	}
	if err := top.CancelConsumers(ctx, brokertest.Name(t, "missing")); !errors.Is(err, broker.ErrNoQueue) {
		t.Errorf("CancelConsumers(missing queue) = %v, want ErrNoQueue", err)
	}
}
