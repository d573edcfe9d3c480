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

// consumeDead counts every job the runtime dead-lettered into queue.
func (w *watcher) consumeDead(ctx context.Context, queue string) error {
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
			seq, ok := worker.HeaderInt(d.Headers, loadgen.HeaderSeq)
			attempts, _ := worker.HeaderInt(d.Headers, worker.HeaderAttempts)
			if ok {
				w.ledger.Final(seq, ledger.DeadLettered, int(attempts))
				w.dead.Add(1)
			}
			_ = d.Ack(false)
		}
	}()
	return nil
}

// consumeEvents checks every event emitted by a job: its TID must be the TID of
// the job that emitted it (the body carries the job's sequence number).
func (w *watcher) consumeEvents(ctx context.Context, event string) error {
	ch, err := w.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.ExchangeDeclare(event, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %q: %w", event, err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fmt.Errorf("declare event queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, "", event, false, nil); err != nil {
		return fmt.Errorf("bind event queue to %q: %w", event, err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "bench-runner-events", true, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume events: %w", err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer ch.Close()
		for d := range deliveries {
			if len(d.Body) != 8 {
				w.ledger.Emitted(false)
				continue
			}
			seq := int64(binary.LittleEndian.Uint64(d.Body))
			tid, _ := d.Headers[worker.HeaderTID].(string)
			w.ledger.Emitted(tid == w.tidFor(seq))
		}
	}()
	return nil
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
