package worker

import (
	"context"
	"testing"
	"time"
)

func TestReconnectAfterConnectionLoss(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	var ks killSwitch
	cfg.Dial = ks.dial
	a.deleteLater(queuesOf(task, cfg.Retry))
	type delivery struct {
		body        string
		redelivered bool
	}
	seen := make(chan delivery, 8)
	hold := make(chan struct{})
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		seen <- delivery{string(j.Body), j.Redelivered}
		if string(j.Body) == "held" && !j.Redelivered {
			<-hold // in flight while the connection dies; its ack will fail
		}
		return nil
	})
	start(t, w)
	if err := w.PublishTask(ctx, task, []byte("held")); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ctx, seen); d.redelivered {
		t.Fatal("first delivery flagged redelivered")
	}
	ks.kill()
	eventually(t, ctx, "a reconnect", func() bool { return w.Stats().Reconnects == 1 && w.Stats().ConsumerActive })
	close(hold)
	if d := recv(t, ctx, seen); d.body != "held" || !d.redelivered {
		t.Errorf("after reconnect got %+v, want the held job redelivered", d)
	}
	// Topology, QoS and consumers are back: a new job flows.
	if err := w.PublishTask(ctx, task, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ctx, seen); d.body != "after" {
		t.Errorf("got %+v", d)
	}
}

// Issue 12, defect 1: deleting a queue under its consumer makes the broker cancel the
// consumer (basic.cancel); the worker must declare the queue again and consume again.
func TestConsumerCancelledByBrokerIsRestored(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	a.deleteLater(queuesOf(task, cfg.Retry))
	seen := make(chan string, 4)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		seen <- string(j.Body)
		return nil
	})
	start(t, w)
	p := newPublisher(t, app)
	if err := p.PublishTask(ctx, task, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ctx, seen); got != "before" {
		t.Fatalf("got %q", got)
	}
	if _, err := a.channel().QueueDelete(task, false, false, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the queue declared again with one consumer", func() bool {
		_, consumers, err := a.inspect(task)
		return err == nil && consumers == 1
	})
	if err := newPublisher(t, app).PublishTask(ctx, task, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ctx, seen); got != "after" {
		t.Fatalf("got %q", got)
	}
	if s := w.Stats(); !s.ConsumerActive || s.ConsumerCancels != 1 || s.Reconnects != 0 {
		t.Errorf("stats = %+v, want an active consumer after one cancel, without a reconnect", s)
	}
}
