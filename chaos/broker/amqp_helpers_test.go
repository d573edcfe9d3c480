package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/chaos/broker"
)

// dial opens a connection that t.Cleanup closes.
func dial(ctx context.Context, t *testing.T, url string) *amqp.Connection {
	t.Helper()
	conn, err := broker.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// declare declares a durable queue of type qtype ("classic" or "quorum")
// through url, and deletes it when the test ends (unless the test did).
func declare(ctx context.Context, t *testing.T, url, queue, qtype string) {
	t.Helper()
	ch, err := dial(ctx, t, url).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": qtype}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A gone queue (or node) is fine.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := broker.Dial(ctx, url)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			ch.QueueDelete(queue, false, false, false)
		}
	})
}

// publishConfirmed publishes a persistent message and waits for its confirm.
func publishConfirmed(ctx context.Context, t *testing.T, url, queue, body string) {
	t.Helper()
	dc := publishDeferred(ctx, t, url, queue, body)
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish to %s not confirmed: ack=%v, %v", queue, ok, err)
	}
}

// publishDeferred publishes a persistent, mandatory message on a connection
// of its own and returns its pending confirm.
func publishDeferred(ctx context.Context, t *testing.T, url, queue, body string) *amqp.DeferredConfirmation {
	t.Helper()
	ch, err := dial(ctx, t, url).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// consumer is a consumer on a connection of its own.
type consumer struct {
	conn       *amqp.Connection
	deliveries <-chan amqp.Delivery
	cancels    <-chan string      // basic.cancel from the broker
	closed     <-chan *amqp.Error // the connection's close
}

func consume(ctx context.Context, t *testing.T, url, queue string) consumer {
	t.Helper()
	conn := dial(ctx, t, url)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	cancels := ch.NotifyCancel(make(chan string, 1))
	d, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return consumer{conn: conn, deliveries: d, cancels: cancels, closed: closed}
}

// receive waits for a delivery with body and acks it.
func (c consumer) receive(ctx context.Context, t *testing.T, body string) {
	t.Helper()
	select {
	case d, ok := <-c.deliveries:
		if !ok {
			t.Fatal("the consumer's deliveries ended")
		}
		if string(d.Body) != body {
			t.Fatalf("received %q, want %q", d.Body, body)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatalf("no delivery of %q: %v", body, ctx.Err())
	}
}

// waitCancelled waits for the broker's basic.cancel.
func (c consumer) waitCancelled(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-c.cancels:
	case e := <-c.closed:
		t.Fatalf("the connection closed instead of the consumer being cancelled: %v", e)
	case <-ctx.Done():
		t.Fatalf("the broker did not cancel the consumer: %v", ctx.Err())
	}
}

// messages returns how many ready messages the queue holds.
func messages(ctx context.Context, t *testing.T, url, queue string) int {
	t.Helper()
	ch, err := dial(ctx, t, url).Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// eventually calls f every 200ms until it returns nil, and fails the test
// with f's last error when ctx ends first.
func eventually(ctx context.Context, t *testing.T, what string, f func() error) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// leader waits until the queue has a leader and returns it.
func leader(ctx context.Context, t *testing.T, c *broker.Cluster, queue string) int {
	t.Helper()
	var l int
	eventually(ctx, t, "find the leader of "+queue, func() error {
		var err error
		l, err = c.Leader(ctx, queue)
		if err != nil && !errors.Is(err, broker.ErrNoLeader) {
			t.Fatal(err)
		}
		return err
	})
	return l
}
