package worker

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestQuorumQueue(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.QueueType = QueueQuorum
	a.deleteLater(queuesOf(task, cfg.Retry))
	done := make(chan int, 2)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		if j.Attempt == 1 {
			return errBoom
		}
		done <- j.Attempt
		return nil
	})
	start(t, w)
	if err := w.PublishTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, ctx, done); n != 2 {
		t.Errorf("attempt %d", n)
	}
	// Redeclaring as classic must fail: the job, dead and retry queues really are
	// quorum queues (replicated on a cluster).
	for _, q := range queuesOf(task, cfg.Retry) {
		ch, err := a.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err == nil {
			t.Errorf("queue %q is not a quorum queue", q)
		}
		_ = ch.Close()
	}
}

// A message that crashes every worker that takes it (here: the connection dies while
// it is handled) is dead-lettered by the broker once the delivery limit is reached.
func TestQuorumDeliveryLimitBackstop(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 30*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.QueueType = QueueQuorum
	cfg.DeliveryLimit = 2
	var ks killSwitch
	cfg.Dial = ks.dial
	a.deleteLater(queuesOf(task, cfg.Retry))
	var deliveries atomic.Int32
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		deliveries.Add(1)
		ks.kill() // the process "crashes" with the job in hand: its ack fails
		return nil
	})
	start(t, w)
	if err := newPublisher(t, app).PublishTask(WithTID(ctx, "tid-poison"), task, []byte("poison")); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the poison message in the dead queue", func() bool {
		ready, _, err := a.inspect(DeadQueue(task))
		return err == nil && ready == 1
	})
	if n := deliveries.Load(); n > int32(cfg.DeliveryLimit)+1 {
		t.Errorf("%d deliveries with delivery limit %d", n, cfg.DeliveryLimit)
	}
	q, err := OpenDeadLetters(ctx, DeadLetterConfig{URL: cfg.URL, Queue: task})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	dls, err := q.Peek(ctx, 1)
	if err != nil || len(dls) != 1 {
		t.Fatalf("peek = %v, %v", dls, err)
	}
	if dl := dls[0]; dl.TID != "tid-poison" || !strings.Contains(dl.Error, "delivery_limit") || dl.Queue != task {
		t.Errorf("dead letter = %+v", dl)
	}
}
