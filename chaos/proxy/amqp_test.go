package proxy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func brokerURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

func TestAMQPThroughProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, err := url.Parse(brokerURL())
	if err != nil {
		t.Fatalf("parse broker URL: %v", err)
	}
	s := New()
	defer func() { _ = s.Close() }()
	p, err := s.Add("broker", u.Host)
	if err != nil {
		t.Fatalf("add proxy: %v", err)
	}
	u.Host = p.Addr()
	conn, err := amqp.DialConfig(u.String(), amqp.Config{Heartbeat: 10 * time.Second, Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Skipf("no broker reachable through the proxy: %v", err)
	}
	defer func() { _ = conn.Close() }()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	// Exclusive: the broker deletes it when the connection goes.
	queue := fmt.Sprintf("chaos-proxy-test-%d", rand.Int64())

	const latency = 150 * time.Millisecond
	addToxic(t, p, Toxic{Name: "lat", Type: "latency", Stream: StreamBoth, Attrs: map[string]int64{"latency": latency.Milliseconds()}})
	start := time.Now()
	if _, err := ch.QueueDeclare(queue, false, true, true, false, nil); err != nil {
		t.Fatalf("declare queue through latency: %v", err)
	}
	if d := time.Since(start); d < 2*latency {
		t.Errorf("queue.declare round trip took %v, want >= %v", d, 2*latency)
	}
	removeToxic(t, p, "lat")
	if conn.IsClosed() {
		t.Fatal("connection closed by a latency toxic")
	}

	addToxic(t, p, Toxic{Name: "rst", Type: "reset_peer", Stream: StreamBoth})
	// The toxic cuts the connection when data next flows through it.
	declared := make(chan error, 1)
	go func() {
		_, err := ch.QueueDeclarePassive(queue, false, true, true, false, nil)
		declared <- err
	}()
	select {
	case err := <-closed:
		if err == nil {
			t.Error("NotifyClose fired without an error, want the connection failure")
		}
	case <-ctx.Done():
		t.Fatal("connection not closed by reset_peer")
	}
	select {
	case err := <-declared:
		if err == nil {
			t.Error("declare succeeded on a reset connection")
		}
	case <-ctx.Done():
		t.Fatal("declare did not return after the connection was reset")
	}
}
