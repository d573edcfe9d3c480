package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/worker"
)

// watcher is the runner's own broker connection, straight to the broker (no
// proxy, so faults don't touch it): it counts dead-lettered jobs, checks the
// TIDs of emitted events and reads queue depths.
type watcher struct {
	conn   *amqp.Connection
	ledger *ledger.Ledger
	tidFor func(seq int64) string
	log    *slog.Logger

	dead atomic.Int64

	mu     sync.Mutex
	sample *amqp.Channel
	wg     sync.WaitGroup
}

func newWatcher(url string, l *ledger.Ledger, tidFor func(int64) string, log *slog.Logger) (*watcher, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, fmt.Errorf("connect watcher: %w", err)
	}
	return &watcher{conn: conn, ledger: l, tidFor: tidFor, log: log}, nil
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
	ch, err := w.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Qos(500, 0, false); err != nil {
		return fmt.Errorf("set qos on %q: %w", queue, err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, queue, "bench-runner-dead", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %q: %w", queue, err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer ch.Close()
		for d := range deliveries {
			seq, ok := dl.mine(&d)
			attempts, _ := worker.HeaderInt(d.Headers, worker.HeaderAttempts)
			switch {
			case ok && dl.record != nil:
				dl.record(seq, int(attempts))
				w.dead.Add(1)
			case ok:
				w.ledger.Final(seq, ledger.DeadLettered, int(attempts))
				w.dead.Add(1)
			case dl.hold:
				continue
			}
			_ = d.Ack(false)
		}
	}()
	return nil
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
	ch, err := w.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		ch.Close()
		return fmt.Errorf("declare the runner's queue for %q: %w", exchange, err)
	}
	if err := ch.QueueBind(q.Name, "", exchange, false, nil); err != nil {
		return fmt.Errorf("bind the runner's queue to %q: %w", exchange, err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "bench-runner-events", true, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume events of %q: %w", exchange, err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer ch.Close()
		for d := range deliveries {
			handle(&d)
		}
	}()
	return nil
}

// ensureExchange declares a durable fanout exchange (the runtime's kind of
// event exchange) unless it exists; declared says the run created it.
func (w *watcher) ensureExchange(name string) (declared bool, err error) {
	exists, err := w.exchangeExists(name)
	if err != nil || exists {
		return false, err
	}
	ch, err := w.conn.Channel()
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
		ch, err := w.conn.Channel()
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
	err := w.conn.Close()
	w.wg.Wait()
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		w.log.Debug("close watcher", "err", err)
	}
}
