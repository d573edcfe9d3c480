package agent

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/benchmq/bench/internal/brokertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// An agent's queue receives broadcasts and messages by its name, the
// runner's queue replies by queue name, and a message of another version
// is refused, not misread.
func TestBusRoutes(t *testing.T) {
	url := brokertest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := brokertest.Name(t, "agent")
	ag, err := Dial(ctx, url, KeyAll, AgentKey(name))
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Close()
	run, err := Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()

	send := func(key string, typ string) {
		t.Helper()
		m, err := NewMsg(typ, "r1", "runner", Discover{ReplyTo: run.Queue()})
		if err != nil {
			t.Fatal(err)
		}
		if err := run.Publish(ctx, key, m); err != nil {
			t.Fatal(err)
		}
	}
	// Agents of other runs may share the broker: the broadcast is one they ignore.
	send(KeyAll, TypeHeartbeat)
	send(AgentKey(name), TypePing)
	send(AgentKey(name+"-other"), TypeAssign) // another agent's: never arrives
	for _, want := range []string{TypeHeartbeat, TypePing} {
		m, ok, err := ag.Recv(ctx)
		if !ok || err != nil || m.Type != want || m.V != Version || m.Run != "r1" {
			t.Fatalf("received %+v %v %v, want %s", m, ok, err, want)
		}
		var d Discover
		if err := m.Decode(&d); err != nil || d.ReplyTo != run.Queue() {
			t.Fatalf("body %+v, %v", d, err)
		}
	}
	reply, _ := NewMsg(TypeHello, "r1", name, Hello{Name: name})
	if err := ag.SendTo(ctx, run.Queue(), reply); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := run.Recv(ctx); !ok || err != nil || m.Type != TypeHello || m.From != name {
		t.Fatalf("runner received %+v %v %v", m, ok, err)
	}
	// A future version: the channel is the bus's own, so publish raw.
	body, _ := json.Marshal(Msg{V: Version + 1, Type: TypePing, From: "future"})
	if err := ag.ch.PublishWithContext(ctx, "", run.Queue(), false, false, amqp.Publishing{Body: body}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := run.Recv(ctx); !ok || err == nil {
		t.Fatalf("a version %d message was accepted (err %v)", Version+1, err)
	}
}
