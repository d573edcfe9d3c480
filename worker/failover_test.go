package worker

import (
	"context"
	"testing"
	"time"
)

// With several URLs the worker and the publisher connect to one that answers.
func TestFailoverToAnotherURL(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	const down = "amqp://guest:guest@127.0.0.1:1/" // nothing listens on port 1
	for _, order := range []string{FailoverInOrder, FailoverRandom} {
		app := uniq(t)
		task := app + ".job.run"
		cfg := baseConfig(t, app)
		cfg.URLs = []string{down, cfg.URL, down}
		cfg.URL = down
		cfg.Failover = order
		a.deleteLater(queuesOf(task, cfg.Retry))
		done := make(chan struct{}, 1)
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_ = w.HandleTask(task, func(context.Context, *Job) error { done <- struct{}{}; return nil })
		start(t, w)
		p, err := NewPublisher(PublisherConfig{URL: down, URLs: cfg.URLs, Failover: order, App: app, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.PublishTask(ctx, task, nil); err != nil {
			t.Fatalf("%s: publish = %v", order, err)
		}
		recv(t, ctx, done)
		_ = p.Close()
	}
	if _, err := New(Config{App: "app", Failover: "sideways"}); !IsConfigError(err) {
		t.Errorf("New without URL and with a bad failover = %v", err)
	}
}
