package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/worker"
)

// watcher is the runner's own broker connection, straight to the broker (no
// proxy, so faults don't touch it): it counts dead-lettered jobs, checks the
// TIDs of emitted events and reads queue depths. On a cluster a node fault can
// take its node away: it then connects to the next node of urls, and its
// consumers consume again.
type watcher struct {
	urls   []string
	ledger *ledger.Ledger
	tidFor func(seq int64) string
	log    *slog.Logger

	dead atomic.Int64

	mu     sync.Mutex
	sample *amqp.Channel
	wg     sync.WaitGroup

	connMu sync.Mutex
	conn   *amqp.Connection
	closed bool
}

// runnerConnName is the client-provided name of the runner's connection:
// close_connections spares it.
const runnerConnName = "bench runner"

func newWatcher(urls []string, l *ledger.Ledger, tidFor func(int64) string, log *slog.Logger) (*watcher, error) {
	w := &watcher{urls: urls, ledger: l, tidFor: tidFor, log: log}
	conn, err := w.dial()
	if err != nil {
		return nil, err
	}
	w.conn = conn
	return w, nil
}

// dial connects to the first of urls that answers.
func (w *watcher) dial() (*amqp.Connection, error) {
	var errs []error
	for _, u := range w.urls {
		conn, err := amqp.DialConfig(u, amqp.Config{
			Heartbeat:  10 * time.Second,
			Locale:     "en_US",
			Dial:       amqp.DefaultDial(5 * time.Second),
			Properties: amqp.Table{"connection_name": runnerConnName},
		})
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connect watcher: %w", errors.Join(errs...))
}

// channel opens a channel, connecting again first when the connection is lost.
func (w *watcher) channel() (*amqp.Channel, error) {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	if w.closed {
		return nil, amqp.ErrClosed
	}
	if w.conn.IsClosed() {
		conn, err := w.dial()
		if err != nil {
			return nil, err
		}
		w.log.Info("the runner's broker connection was lost; connected again")
		w.conn = conn
	}
	return w.conn.Channel()
}

// consume hands every delivery of what open consumes to handle, from one
// goroutine, until ctx ends; when the channel is lost (its node went away) it
// opens it again. The first open's error is returned.
func (w *watcher) consume(ctx context.Context, open func(*amqp.Channel) (<-chan amqp.Delivery, error), handle func(*amqp.Delivery)) error {
	start := func() (*amqp.Channel, <-chan amqp.Delivery, error) {
		ch, err := w.channel()
		if err != nil {
			return nil, nil, fmt.Errorf("open channel: %w", err)
		}
		ds, err := open(ch)
		if err != nil {
			ch.Close()
			return nil, nil, err
		}
		return ch, ds, nil
	}
	ch, deliveries, err := start()
	if err != nil {
		return err
	}
	w.wg.Go(func() {
		retry := time.NewTicker(250 * time.Millisecond)
		defer retry.Stop()
		for {
			for d := range deliveries {
				handle(&d)
			}
			ch.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case <-retry.C:
				}
				if ch, deliveries, err = start(); err == nil {
					break
				}
				if errors.Is(err, amqp.ErrClosed) && w.isClosed() {
					return
				}
			}
		}
	})
	return nil
}

func (w *watcher) isClosed() bool {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	return w.closed
}

// deadLetters says how consumeDead reads a dead-letter queue.
type deadLetters struct {
	// mine returns the run's sequence number of a message, false for a
	// message that is not one of the run's jobs.
	mine func(*amqp.Delivery) (int64, bool)
	// hold leaves messages that are not the run's unacked until the consumer
	// ends, so they go back to a queue bench does not own; without it they
	// are acked (the queue is the run's own).
	hold bool
	// record, if set, records a dead letter instead of the ledger alone.
	record func(seq int64, attempts int)
}

// consumeDead counts the jobs dead-lettered into queue.
func (w *watcher) consumeDead(ctx context.Context, queue string, dl deadLetters) error {
	return w.consume(ctx, func(ch *amqp.Channel) (<-chan amqp.Delivery, error) {
		if err := ch.Qos(500, 0, false); err != nil {
			return nil, fmt.Errorf("set qos on %q: %w", queue, err)
		}
		deliveries, err := ch.ConsumeWithContext(ctx, queue, "bench-runner-dead", false, false, false, false, nil)
		if err != nil {
			return nil, fmt.Errorf("consume %q: %w", queue, err)
		}
		return deliveries, nil
	}, func(d *amqp.Delivery) {
		seq, ok := dl.mine(d)
		attempts, _ := worker.HeaderInt(d.Headers, worker.HeaderAttempts)
		switch {
		case ok && dl.record != nil:
			dl.record(seq, int(attempts))
			w.dead.Add(1)
		case ok:
			w.ledger.Final(seq, ledger.DeadLettered, int(attempts))
			w.dead.Add(1)
		case dl.hold:
			return
		}
		_ = d.Ack(false)
	})
}

// seqHeader reads the sequence number the load generator put on a job.
func seqHeader(d *amqp.Delivery) (int64, bool) { return worker.HeaderInt(d.Headers, loadgen.HeaderSeq) }

// consumeEmitted checks every event emitted by a simulated job: its TID must
// be the TID of the job that emitted it (the body carries the job's
// sequence number).
func (w *watcher) consumeEmitted(ctx context.Context, event string) error {
	if _, err := w.ensureExchange(event); err != nil {
		return err
	}
	return w.consumeEvents(ctx, event, func(d *amqp.Delivery) {
		if len(d.Body) != 8 {
			w.ledger.Emitted(false)
			return
		}
		seq := int64(binary.LittleEndian.Uint64(d.Body))
		tid, _ := d.Headers[worker.HeaderTID].(string)
		w.ledger.Emitted(tid == w.tidFor(seq))
	})
}

// consumeEvents binds a queue of the runner's own (exclusive, deleted with
// its channel) to the fanout exchange and hands every message to handle,
// from one goroutine.
func (w *watcher) consumeEvents(ctx context.Context, exchange string, handle func(*amqp.Delivery)) error {
	return w.consume(ctx, func(ch *amqp.Channel) (<-chan amqp.Delivery, error) {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return nil, fmt.Errorf("declare the runner's queue for %q: %w", exchange, err)
		}
		if err := ch.QueueBind(q.Name, "", exchange, false, nil); err != nil {
			return nil, fmt.Errorf("bind the runner's queue to %q: %w", exchange, err)
		}
		deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "bench-runner-events", true, true, false, false, nil)
		if err != nil {
			return nil, fmt.Errorf("consume events of %q: %w", exchange, err)
		}
		return deliveries, nil
	}, handle)
}

// ensureExchange declares a durable fanout exchange (the runtime's kind of
// event exchange) unless it exists; declared says the run created it.
func (w *watcher) ensureExchange(name string) (declared bool, err error) {
	exists, err := w.exchangeExists(name)
	if err != nil || exists {
		return false, err
	}
	ch, err := w.channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(name, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return false, fmt.Errorf("declare exchange %q: %w", name, err)
	}
	return true, nil
}

// depth returns the ready count of a queue (0 when it doesn't exist).
func (w *watcher) depth(name string) (int64, int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sample == nil || w.sample.IsClosed() {
		ch, err := w.channel()
		if err != nil {
			return 0, 0, fmt.Errorf("open channel: %w", err)
		}
		w.sample = ch
	}
	q, err := w.sample.QueueDeclarePassive(name, false, false, false, false, nil)
	if err != nil {
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
			w.sample = nil
			return 0, 0, nil
		}
		w.sample = nil
		return 0, 0, fmt.Errorf("inspect queue %q: %w", name, err)
	}
	return int64(q.Messages), q.Consumers, nil
}

// close ends the consumers (their contexts must be cancelled first) and the connection.
func (w *watcher) close() {
	w.connMu.Lock()
	w.closed = true
	err := w.conn.Close()
	w.connMu.Unlock()
	w.wg.Wait()
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		w.log.Debug("close watcher", "err", err)
	}
}
