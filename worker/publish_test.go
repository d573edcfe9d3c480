package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestUnconfirmedPublishIsAnError(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 10*time.Second)
	app := uniq(t)
	task := app + ".job.full"
	a.deleteLater([]string{task})
	if _, err := a.channel().QueueDeclare(task, true, false, false, false, amqp.Table{
		"x-max-length": int32(0), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, app)
	if err := p.PublishTask(ctx, task, []byte("x")); !errors.Is(err, ErrNacked) {
		t.Errorf("publish to a full reject-publish queue = %v, want ErrNacked", err)
	}
	// A task queue that does not exist yet is declared rather than dropped silently.
	fresh := app + ".job.fresh"
	a.deleteLater([]string{fresh})
	if err := p.PublishTask(ctx, fresh, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if ready, _, err := a.inspect(fresh); err != nil || ready != 1 {
		t.Errorf("fresh queue: ready %d, err %v", ready, err)
	}
	_ = p.Close()
	if err := p.PublishTask(ctx, fresh, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after Close = %v", err)
	}
}

func TestPublisherReconnectsAndNeverDropsSilently(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	a.deleteLater([]string{task})
	var ks killSwitch
	p, err := NewPublisher(PublisherConfig{URL: brokertest.URL(t), App: app, Dial: ks.dial, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	confirmed, failed := 0, 0
	for i := range 6 {
		if i == 3 {
			ks.kill()
		}
		if err := p.PublishTask(ctx, task, []byte("x")); err != nil {
			failed++
			continue
		}
		confirmed++
	}
	if confirmed < 5 || failed > 1 {
		t.Errorf("confirmed %d, failed %d: the publisher did not reconnect", confirmed, failed)
	}
	// Every confirmed publish is in the queue.
	eventually(t, ctx, "confirmed messages stored", func() bool {
		ready, _, err := a.inspect(task)
		return err == nil && ready == confirmed
	})
}

// Issue 12, defect 2: a publish into a queue deleted after the publisher first saw it
// must either reach a queue or fail; it must never be confirmed into nowhere.
func TestPublishToDeletedQueueIsNotLost(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 10*time.Second)
	app := uniq(t)
	task := app + ".job.gone"
	a.deleteLater([]string{task})
	p := newPublisher(t, app)
	if err := p.PublishTask(ctx, task, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.channel().QueueDelete(task, false, false, false); err != nil {
		t.Fatal(err)
	}
	err := p.PublishTask(ctx, task, []byte("second"))
	if err != nil {
		return // failing loudly is allowed
	}
	ready, _, ierr := a.inspect(task)
	if ierr != nil || ready != 1 {
		t.Fatalf("PublishTask returned nil, but the queue has %d messages (err %v): the job vanished", ready, ierr)
	}
}

// Issue 12, defect 2: with a retry tier queue missing, a failed job must still come
// back for its next attempt (or stay where it was), never be "retried" into nowhere.
func TestRetryIntoMissingTierIsNotLost(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Retry = RetryPolicy{MaxAttempts: 2, MinDelay: 20 * time.Millisecond}
	a.deleteLater(queuesOf(task, cfg.Retry))
	attempts := make(chan int, 4)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		attempts <- j.Attempt
		if j.Attempt == 1 {
			return errBoom
		}
		return nil
	})
	start(t, w)
	for _, q := range RetryQueues(task, cfg.Retry) {
		if _, err := a.channel().QueueDelete(q, false, false, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := newPublisher(t, app).PublishTask(ctx, task, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, ctx, attempts); n != 1 {
		t.Fatalf("first attempt %d", n)
	}
	if n := recv(t, ctx, attempts); n != 2 {
		t.Fatalf("second attempt %d", n)
	}
	eventually(t, ctx, "ack of attempt 2", func() bool { return w.Stats().Acked == 1 })
}

// Issue 12, defect 2: a channel closed before the confirm is "outcome unknown", not a
// broker nack.
func TestPublishOutcomeUnknownIsNotANack(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 10*time.Second)
	app := uniq(t)
	event := app + ".happened"
	a.deleteLater(nil, event)
	p := newPublisher(t, app)
	if err := p.PublishEvent(ctx, event, []byte("1")); err != nil {
		t.Fatal(err)
	}
	// The publisher has declared the exchange once; without it the publish closes the
	// channel (404) before any confirm.
	if err := a.channel().ExchangeDelete(event, false, false); err != nil {
		t.Fatal(err)
	}
	err := p.PublishEvent(ctx, event, []byte("2"))
	if err == nil {
		t.Fatal("publish to a deleted exchange was confirmed")
	}
	if errors.Is(err, ErrNacked) || !errors.Is(err, ErrUnconfirmed) {
		t.Errorf("publish = %v: want ErrUnconfirmed, not a broker nack", err)
	}
	// The next publish reconnects and declares the exchange again.
	if err := p.PublishEvent(ctx, event, []byte("3")); err != nil {
		t.Errorf("publish after the failure = %v", err)
	}
}
