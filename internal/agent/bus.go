package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Bus is one peer's connection to the control exchange: a confirm-mode
// channel to send on and an exclusive queue of its own to receive from. It
// is safe for concurrent Send.
type Bus struct {
	conn  *amqp.Connection
	ch    *amqp.Channel
	queue string
	in    <-chan amqp.Delivery
	dead  chan *amqp.Error

	mu sync.Mutex // one publish and its confirm at a time
}

// Dial connects to url, declares the control exchange and an exclusive,
// server-named queue bound to keys (none: reachable only by its name).
func Dial(ctx context.Context, url string, keys ...string) (*Bus, error) {
	conn, err := amqp.DialConfig(url, amqp.Config{
		Heartbeat:  5 * time.Second,
		Dial:       amqp.DefaultDial(10 * time.Second),
		Properties: amqp.Table{"connection_name": "bench control"},
	})
	if err != nil {
		return nil, fmt.Errorf("dial broker: %w", err)
	}
	b := &Bus{conn: conn}
	if err := b.setup(keys); err != nil {
		conn.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bus) setup(keys []string) error {
	ch, err := b.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	b.ch = ch
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("enable confirms: %w", err)
	}
	if err := ch.ExchangeDeclare(Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", Exchange, err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fmt.Errorf("declare control queue: %w", err)
	}
	b.queue = q.Name
	for _, k := range keys {
		if err := ch.QueueBind(q.Name, k, Exchange, false, nil); err != nil {
			return fmt.Errorf("bind control queue to %s: %w", k, err)
		}
	}
	in, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume control queue: %w", err)
	}
	b.in = in
	b.dead = b.conn.NotifyClose(make(chan *amqp.Error, 1))
	return nil
}

// Queue is the bus's own queue: where peers reply.
func (b *Bus) Queue() string { return b.queue }

// Closed is signalled when the connection is gone.
func (b *Bus) Closed() <-chan *amqp.Error { return b.dead }

// Recv returns the next message, skipping (and returning an error for) one
// that cannot be read or has another version. ok is false once the bus is
// closed.
func (b *Bus) Recv(ctx context.Context) (m Msg, ok bool, err error) {
	select {
	case d, open := <-b.in:
		if !open {
			return Msg{}, false, nil
		}
		if err := json.Unmarshal(d.Body, &m); err != nil {
			return Msg{}, true, fmt.Errorf("decode control message: %w", err)
		}
		if m.V != Version {
			return Msg{}, true, fmt.Errorf("control message %q from %s has version %d, want %d", m.Type, m.From, m.V, Version)
		}
		return m, true, nil
	case <-ctx.Done():
		return Msg{}, false, ctx.Err()
	}
}

// Publish sends m through the control exchange with routing key key.
func (b *Bus) Publish(ctx context.Context, key string, m Msg) error {
	return b.send(ctx, Exchange, key, m)
}

// SendTo sends m to a peer's queue (its Bus.Queue) through the default exchange.
func (b *Bus) SendTo(ctx context.Context, queue string, m Msg) error {
	return b.send(ctx, "", queue, m)
}

func (b *Bus) send(ctx context.Context, exchange, key string, m Msg) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.Type, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	dc, err := b.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{
		ContentType: "application/json",
		Type:        m.Type,
		Body:        body,
	})
	if err != nil {
		return fmt.Errorf("publish %s: %w", m.Type, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("confirm %s: %w", m.Type, err)
	}
	if !ok {
		return fmt.Errorf("publish %s: nacked by the broker", m.Type)
	}
	return nil
}

// Close closes the connection; the exclusive queue goes with it.
func (b *Bus) Close() error {
	err := b.conn.Close()
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
