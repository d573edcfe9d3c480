package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func publishOpts(opts []PublishOption) publishOptions {
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// newMessage builds a persistent message carrying the TID of ctx (or a new one) and
// its W3C trace context, if any.
func newMessage(ctx context.Context, body []byte, o publishOptions) amqp.Publishing {
	now := time.Now()
	h := make(amqp.Table, len(o.headers)+3)
	for k, v := range o.headers {
		h[k] = v
	}
	if _, ok := h[HeaderTID]; !ok {
		tid := TIDFrom(ctx)
		if tid == "" {
			tid = newID()
		}
		h[HeaderTID] = tid
	}
	if _, ok := h[HeaderFirstPublished]; !ok {
		h[HeaderFirstPublished] = now.UnixMilli()
	}
	if _, ok := h[HeaderTraceParent]; !ok {
		if tp, ts := TraceParentFrom(ctx); tp != "" {
			h[HeaderTraceParent] = tp
			if ts != "" {
				h[HeaderTraceState] = ts
			}
		}
	}
	if o.id == "" {
		o.id = newID()
	}
	return amqp.Publishing{
		Headers:      h,
		ContentType:  o.contentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    o.id,
		Timestamp:    now,
		Body:         body,
	}
}

// confirmer is a channel in confirm mode, the names already declared on its
// connection, and the messages the broker returned as unroutable. Publishing on it is
// safe from many goroutines.
type confirmer struct {
	conn    *amqp.Connection
	ch      *amqp.Channel
	timeout time.Duration
	topo    topology

	mu       sync.Mutex // serialises declares
	declared map[string]bool

	retMu    sync.Mutex
	returned map[returnKey]int
	barrier  chan chan struct{} // asks the return reader to catch up
	done     chan struct{}      // closed when the return reader has ended
}

// returnKey identifies a returned message: mandatory publishes all go through the
// default exchange, so the routing key is the queue.
type returnKey struct{ key, id string }

// maxUnclaimed bounds the returns kept for publishes that stopped waiting.
const maxUnclaimed = 1024

func newConfirmer(conn *amqp.Connection, timeout time.Duration, topo topology) (*confirmer, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open publish channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	c := &confirmer{
		conn: conn, ch: ch, timeout: timeout, topo: topo,
		declared: map[string]bool{},
		returned: map[returnKey]int{},
		barrier:  make(chan chan struct{}),
		done:     make(chan struct{}),
	}
	go c.readReturns(ch.NotifyReturn(make(chan amqp.Return, 64)))
	return c, nil
}

// wait waits for the return reader, which ends when the channel closes.
func (c *confirmer) wait() { <-c.done }

// readReturns records basic.returns until the channel closes. The broker sends a
// mandatory message's return before its confirm, and the connection's reader hands
// the return over before it handles the confirm; a barrier request therefore finds
// every return that precedes the confirm its sender saw.
func (c *confirmer) readReturns(rets <-chan amqp.Return) {
	defer close(c.done)
	for {
		select {
		case r, ok := <-rets:
			if !ok {
				return
			}
			c.record(r)
		case b := <-c.barrier:
			for drained := false; !drained; {
				select {
				case r, ok := <-rets:
					if !ok {
						close(b)
						return
					}
					c.record(r)
				default:
					drained = true
				}
			}
			close(b)
		}
	}
}

func (c *confirmer) record(r amqp.Return) {
	c.retMu.Lock()
	defer c.retMu.Unlock()
	if len(c.returned) >= maxUnclaimed {
		clear(c.returned) // returns of publishes that gave up waiting
	}
	c.returned[returnKey{r.RoutingKey, r.MessageId}]++
}

// claimReturn reports whether the broker returned the confirmed publish of id to key.
func (c *confirmer) claimReturn(key, id string) bool {
	b := make(chan struct{})
	select {
	case c.barrier <- b:
		<-b
	case <-c.done:
	}
	c.retMu.Lock()
	defer c.retMu.Unlock()
	k := returnKey{key, id}
	if c.returned[k] == 0 {
		return false
	}
	if c.returned[k]--; c.returned[k] == 0 {
		delete(c.returned, k)
	}
	return true
}

// publish sends msg and waits for the broker's confirm. Errors wrap ErrNacked (refused),
// ErrUnroutable (mandatory and returned) or ErrUnconfirmed (outcome unknown).
func (c *confirmer) publish(ctx context.Context, exchange, key string, mandatory bool, msg amqp.Publishing) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, mandatory, false, msg)
	if err != nil {
		if errors.Is(err, amqp.ErrClosed) {
			return fmt.Errorf("publish to exchange %q key %q: %w: %w", exchange, key, ErrUnconfirmed, err)
		}
		return fmt.Errorf("publish to exchange %q key %q: %w", exchange, key, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("publish to exchange %q key %q: %w: %w", exchange, key, ErrUnconfirmed, err)
	}
	if !ok {
		if c.ch.IsClosed() {
			return fmt.Errorf("publish to exchange %q key %q: %w: channel closed first", exchange, key, ErrUnconfirmed)
		}
		return fmt.Errorf("publish to exchange %q key %q: %w", exchange, key, ErrNacked)
	}
	if mandatory && c.claimReturn(key, msg.MessageId) {
		return fmt.Errorf("publish to queue %q: %w", key, ErrUnroutable)
	}
	return nil
}

// publishQueue publishes msg into queue through the default exchange, mandatory. When
// the broker returns it because the queue is gone, it declares the queue with declare
// and publishes once more: the message is in a queue or the error says why not. A nil
// declare never declares (the queue must exist).
func (c *confirmer) publishQueue(ctx context.Context, queue string, msg amqp.Publishing, declare func(*amqp.Channel) error) error {
	if declare == nil {
		return c.publish(ctx, "", queue, true, msg)
	}
	if err := c.ensure(queue, declare); err != nil {
		return err
	}
	err := c.publish(ctx, "", queue, true, msg)
	if !errors.Is(err, ErrUnroutable) {
		return err
	}
	c.forget(queue)
	if err := c.ensure(queue, declare); err != nil {
		return fmt.Errorf("declare queue %q again after a returned publish: %w", queue, err)
	}
	return c.publish(ctx, "", queue, true, msg)
}

// ensure runs declare once per name on this connection, on a throwaway channel (a
// failed declare closes its channel).
func (c *confirmer) ensure(name string, declare func(*amqp.Channel) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.declared[name] {
		return nil
	}
	ch, err := c.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel to declare %q: %w", name, err)
	}
	defer ch.Close()
	if err := declare(ch); err != nil {
		return err
	}
	c.declared[name] = true
	return nil
}

// markDeclared records names declared elsewhere (the worker's topology).
func (c *confirmer) markDeclared(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		c.declared[n] = true
	}
}

func (c *confirmer) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.declared, name)
}

// declareExisting declares a task's queue unless it exists: an existing queue is used
// as it is, whatever its arguments; a missing one is declared with the configured
// topology. A failed passive declare closes its channel, hence a second one.
func (c *confirmer) declareExisting(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err == nil {
			return nil
		}
		ch2, err := c.conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel to declare queue %q: %w", queue, err)
		}
		defer ch2.Close()
		return c.topo.declareJobQueue(ch2, queue)
	}
}

func (c *confirmer) publishTask(ctx context.Context, task string, body []byte, opts []PublishOption) error {
	o := publishOpts(opts)
	if o.after > maxTTL {
		return fmt.Errorf("delay %v: above the broker's longest TTL (%v)", o.after, maxTTL)
	}
	queue := TaskQueue(task)
	if err := c.ensure(queue, c.declareExisting(queue)); err != nil {
		return err
	}
	msg := newMessage(ctx, body, o)
	if o.after > 0 {
		d := min(roundUp2(o.after), maxTTL)
		return c.publishQueue(ctx, retryQueue(queue, d), msg, func(ch *amqp.Channel) error {
			return c.topo.declareTier(ch, queue, d)
		})
	}
	return c.publishQueue(ctx, queue, msg, c.declareExisting(queue))
}

// publishEvent publishes to the event's fanout exchange, not mandatory: an event that
// nobody subscribes to is not an error.
func (c *confirmer) publishEvent(ctx context.Context, event string, body []byte, opts []PublishOption) error {
	o := publishOpts(opts)
	if o.after != 0 {
		return errors.New("After: only tasks can be delayed")
	}
	err := c.ensure("x:"+event, func(ch *amqp.Channel) error {
		if err := ch.ExchangeDeclare(event, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %q: %w", event, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.publish(ctx, event, "", false, newMessage(ctx, body, o))
}
