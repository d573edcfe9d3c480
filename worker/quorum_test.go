package worker

import (
	"context"
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
	// Redeclaring as classic must fail: the queue really is a quorum queue.
	ch, err := a.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(task, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err == nil {
		t.Error("the job queue is not a quorum queue")
	}
}
