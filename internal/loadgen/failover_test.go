package loadgen

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
)

// A job its queue never got (no such queue: every publish is mandatory) comes
// back from the broker: it is answered as not confirmed, though the broker
// acks it, and counted as returned.
func TestReturnedIsNotConfirmed(t *testing.T) {
	b := newTestBroker(t)
	tr := newTracker(t)
	cfg := Config{URL: b.url, RoutingKey: brokertest.Name(t, "loadgen-noqueue"), RunID: "returned", Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: 50}}}
	tr.hook(&cfg)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := g.Run(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tr.check(res, 50)
	if res.Confirmed != 0 || res.Returned != 50 || res.Nacked != 50 {
		t.Errorf("confirmed %d returned %d nacked %d, want 0, 50, 50", res.Confirmed, res.Returned, res.Nacked)
	}
}

// With URL down, the generator publishes through the next of URLs.
func TestFailsOverToTheNextURL(t *testing.T) {
	b := newTestBroker(t)
	q := b.queue(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "amqp://guest:guest@" + ln.Addr().String() + "/"
	_ = ln.Close() // nothing listens there now
	tr := newTracker(t)
	cfg := Config{URL: dead, URLs: []string{b.url}, RoutingKey: q, RunID: "failover", Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: 20}}}
	tr.hook(&cfg)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := g.Run(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tr.check(res, 20)
	if res.Confirmed != 20 {
		t.Errorf("confirmed %d of 20", res.Confirmed)
	}
}
