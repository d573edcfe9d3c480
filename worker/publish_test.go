package worker

import (
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
