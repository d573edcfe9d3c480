package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/chaos/broker"
)

// node is a private RabbitMQ node of this test binary with a user of its
// own: bench sees it as an external broker, a test can hand it a URL whose
// password appears nowhere by accident, and the queues a test leaves on it
// bother no one. It starts on first use; privateNodeMain stops it.
var node struct {
	once     sync.Once
	m        *broker.Managed
	url      string
	password string
	err      error
}

type privateNodeMain struct{ m *testing.M }

func (p privateNodeMain) Run() int {
	code := p.m.Run()
	if node.m != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := node.m.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stop the private node:", err)
			code = max(code, 1)
		}
	}
	return code
}

// privateBroker returns the node's URL (user and password its own) and the password.
func privateBroker(t *testing.T) (url, password string) {
	t.Helper()
	node.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		node.m, node.err = broker.StartManaged(ctx, broker.ManagedConfig{})
		if node.err != nil {
			return
		}
		b := make([]byte, 16)
		if _, node.err = rand.Read(b); node.err != nil {
			return
		}
		node.password = "pw" + hex.EncodeToString(b)
		user := "bench-secret-user"
		for _, args := range [][]string{
			{"add_user", user, node.password},
			{"set_permissions", "-p", "/", user, ".*", ".*", ".*"},
		} {
			out, err := exec.CommandContext(ctx, "rabbitmqctl", append([]string{"-n", node.m.NodeName()}, args...)...).CombinedOutput()
			if err != nil {
				node.err = fmt.Errorf("rabbitmqctl %s: %w: %s", args[0], err, out)
				return
			}
		}
		node.url = fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", user, node.password, node.m.Info().AMQPPort)
	})
	if node.err != nil {
		t.Fatalf("a private RabbitMQ node with a user of its own: %v", node.err)
	}
	return node.url, node.password
}

// queueState is a queue on the private node: whether it exists, its messages and consumers.
func queueState(t *testing.T, url, name string) (exists bool, messages, consumers int) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
		return false, 0, 0
	}
	if err != nil {
		t.Fatalf("inspect queue %s: %v", name, err)
	}
	ch.Close()
	return true, q.Messages, q.Consumers
}

// foreignQueue declares a durable queue with n messages on the node, as
// someone's service would have, and, when consume is set, keeps a consumer
// on it (with prefetch 1, unacked) until the test ends.
func foreignQueue(t *testing.T, url, name string, n int, consume bool) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", name, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf("someone's job %d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(context.Background()); err != nil || !ok {
			t.Fatalf("confirm: %v %v", ok, err)
		}
	}
	if consume {
		if err := ch.Qos(1, 0, false); err != nil {
			t.Fatal(err)
		}
		deliveries, err := ch.Consume(name, "someone", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range deliveries { // holds one unacked message until the connection closes
			}
		}()
		t.Cleanup(func() { conn.Close(); <-done })
	}
}
