package perf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/worker"
)

// admin declares, inspects and deletes the measurement queues over its own
// connection. A failed passive declare closes an AMQP channel, so it reopens one
// when it needs to.
type admin struct {
	conn *amqp.Connection
	mu   sync.Mutex
	ch   *amqp.Channel
}

func dialAdmin(url string) (*admin, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, fmt.Errorf("dial broker: %w", err)
	}
	return &admin{conn: conn}, nil
}

func (a *admin) channel() (*amqp.Channel, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil || a.ch.IsClosed() {
		ch, err := a.conn.Channel()
		if err != nil {
			return nil, fmt.Errorf("open admin channel: %w", err)
		}
		a.ch = ch
	}
	return a.ch, nil
}

// declare creates a durable classic queue with the arguments the worker runtime
// and watermill's durable config both declare it with (none), so that either may
// re-declare it.
func (a *admin) declare(queue string) error {
	ch, err := a.channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %q: %w", queue, err)
	}
	return nil
}

// ready returns the number of ready messages in queue.
func (a *admin) ready(queue string) (int, error) {
	ch, err := a.channel()
	if err != nil {
		return 0, err
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("inspect queue %q: %w", queue, err)
	}
	return q.Messages, nil
}

// remove deletes queue and the dead-letter queue the runtime declares next to it.
func (a *admin) remove(queue string) error {
	ch, err := a.channel()
	if err != nil {
		return err
	}
	for _, q := range []string{queue, worker.DeadQueue(queue)} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("delete queue %q: %w", q, err)
		}
	}
	return nil
}

func (a *admin) close() error { return a.conn.Close() }

// version is the server's version as it announced it, or "" if it did not.
func (a *admin) version() string {
	v, _ := a.conn.Properties["version"].(string)
	return v
}

// queueName returns a fresh queue name that is also a valid task of app "perf",
// so that all three consumers can use the same kind of queue.
func queueName() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "perf.q" + hex.EncodeToString(b[:]) + ".noop"
}

// publishStats is what a pipelined publish measured.
type publishStats struct {
	confirmed, nacked int64
	// first is when the first publish was handed to the connection, last when the
	// last confirm arrived: dialling is left out.
	first, last time.Time
}

func (p publishStats) rate() float64 {
	d := p.last.Sub(p.first)
	if p.confirmed < 2 || d <= 0 {
		return 0
	}
	return float64(p.confirmed-1) / d.Seconds()
}

// publishRaw publishes n messages to queue through the default exchange with
// publisher confirms, keeping at most window unconfirmed: the plainest fast
// publisher amqp091-go allows. next fills in message i; it may reuse one
// Publishing, since Publish encodes it before returning.
func publishRaw(ctx context.Context, url, queue string, n int64, window int, next func(i int64) amqp.Publishing) (publishStats, error) {
	var st publishStats
	conn, err := amqp.Dial(url)
	if err != nil {
		return st, fmt.Errorf("dial broker: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return st, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		return st, fmt.Errorf("enable confirms: %w", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, window))
	sem := make(chan struct{}, window)
	done := make(chan struct{})
	var last time.Time
	var acked, nacked int64
	go func() {
		// Ends when the confirm channel closes: all answered, or the channel died.
		defer close(done)
		for c := range confirms {
			if c.Ack {
				acked++
			} else {
				nacked++
			}
			<-sem
			if acked+nacked == n {
				last = time.Now()
				return
			}
		}
	}()
	var pubErr error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-done:
			pubErr = fmt.Errorf("publish message %d: channel closed", i)
		case <-ctx.Done():
			pubErr = fmt.Errorf("publish message %d: %w", i, ctx.Err())
		}
		if pubErr != nil {
			break
		}
		if i == 0 {
			st.first = time.Now()
		}
		if err := ch.PublishWithContext(ctx, "", queue, false, false, next(i)); err != nil {
			pubErr = fmt.Errorf("publish message %d: %w", i, err)
			break
		}
	}
	if pubErr == nil {
		select {
		case <-done:
		case <-ctx.Done():
			pubErr = fmt.Errorf("wait for confirms: %w", ctx.Err())
		}
	}
	_ = conn.Close() // closes confirms, so the listener ends
	<-done
	st.confirmed, st.nacked, st.last = acked, nacked, last
	if pubErr != nil {
		return st, pubErr
	}
	if acked != n {
		return st, fmt.Errorf("publish %d messages: %d acked, %d nacked", n, acked, nacked)
	}
	return st, nil
}

// tid is a fixed transaction ID: jobs from the harness and from worker.Publisher
// always carry one, so the consumers see the header they would in production.
const tid = "0f8fad5b-d9cb-469f-a165-70867728950e"

// jobMessage returns the prefill message: a persistent body of size bytes with a
// TID header and message ID, and nothing any consumer would reject (watermill
// takes only string headers).
func jobMessage(size int) amqp.Publishing {
	return amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		MessageId:    tid,
		Headers:      amqp.Table{worker.HeaderTID: tid},
		Body:         make([]byte, size),
	}
}

// prefill fills queue with n job messages and waits until the broker holds them all.
func prefill(ctx context.Context, a *admin, url, queue string, n int64, size int) error {
	msg := jobMessage(size)
	if _, err := publishRaw(ctx, url, queue, n, defaultWindow, func(int64) amqp.Publishing { return msg }); err != nil {
		return fmt.Errorf("prefill queue %q: %w", queue, err)
	}
	got, err := a.ready(queue)
	if err != nil {
		return err
	}
	if int64(got) != n {
		return fmt.Errorf("prefill queue %q: %d ready, want %d", queue, got, n)
	}
	return nil
}
