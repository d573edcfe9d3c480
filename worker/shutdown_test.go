package worker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGracefulShutdown(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.Prefetch, cfg.Concurrency = 4, 2
	cfg.ShutdownTimeout = 300 * time.Millisecond
	a.deleteLater(queuesOf(task, cfg.Retry))
	started := make(chan string, 8)
	finishQuick := make(chan struct{})
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		started <- string(j.Body)
		if string(j.Body) == "quick" {
			<-finishQuick
			return nil
		}
		<-ctx.Done() // ignores the drain until its context is cancelled
		return ctx.Err()
	})
	r := start(t, w)
	p := newPublisher(t, app)
	for _, b := range []string{"quick", "stuck", "buffered", "buffered"} {
		if err := p.PublishTask(ctx, task, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{recv(t, ctx, started): true, recv(t, ctx, started): true}
	if !got["quick"] || !got["stuck"] {
		t.Fatalf("started %v", got)
	}
	eventually(t, ctx, "all prefetched", func() bool { ready, _, _ := a.inspect(task); return ready == 0 })
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop(t) }()
	eventually(t, ctx, "intake stopped", func() bool { return !w.Stats().ConsumerActive })
	close(finishQuick)
	began := time.Now()
	if err := recv(t, ctx, stopped); err != nil {
		t.Errorf("Run = %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("shutdown took %v with a 300ms drain", d)
	}
	s := w.Stats()
	if s.Acked != 1 || s.Failed != 0 || s.Retried != 0 || s.InFlight != 0 {
		t.Errorf("stats = %+v: want quick acked and the rest requeued uncharged", s)
	}
	ready, consumers, err := a.inspect(task)
	if err != nil || ready != 3 || consumers != 0 {
		t.Errorf("queue after shutdown: ready %d consumers %d err %v, want 3 requeued", ready, consumers, err)
	}
	if err := w.PublishTask(ctx, task, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("PublishTask after Run = %v, want ErrClosed", err)
	}
}
