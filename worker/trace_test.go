package worker

import (
	"context"
	"testing"
	"time"
)

// The W3C traceparent travels beside the TID: from a publish's context into the job,
// and from a handler's context into what it publishes; WithTraceParent overrides it.
func TestTraceParentTravelsWithTheJob(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	app := uniq(t)
	first, second, third := app+".job.first", app+".job.second", app+".job.third"
	cfg := baseConfig(t, app)
	a.deleteLater(append(append(queuesOf(first, cfg.Retry), queuesOf(second, cfg.Retry)...), queuesOf(third, cfg.Retry)...))
	const (
		tp1 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		tp2 = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
	)
	type seen struct{ tid, tp, ts string }
	seenc := make(chan seen, 4)
	w, _ := New(cfg)
	record := func(ctx context.Context, j *Job) {
		ts, _ := j.Headers[HeaderTraceState].(string)
		seenc <- seen{j.TID, j.TraceParent, ts}
	}
	_ = w.HandleTask(first, func(ctx context.Context, j *Job) error {
		record(ctx, j)
		return w.PublishTask(ctx, second, nil)
	})
	_ = w.HandleTask(second, func(ctx context.Context, j *Job) error {
		record(ctx, j)
		return w.PublishTask(WithTraceParent(ctx, tp2, ""), third, nil)
	})
	_ = w.HandleTask(third, func(ctx context.Context, j *Job) error {
		record(ctx, j)
		return nil
	})
	start(t, w)
	pctx := WithTraceParent(WithTID(ctx, "tid-trace"), tp1, "vendor=1")
	if err := newPublisher(t, app).PublishTask(pctx, first, nil); err != nil {
		t.Fatal(err)
	}
	want := []seen{{"tid-trace", tp1, "vendor=1"}, {"tid-trace", tp1, "vendor=1"}, {"tid-trace", tp2, ""}}
	for i, wnt := range want {
		if got := recv(t, ctx, seenc); got != wnt {
			t.Errorf("job %d: %+v, want %+v", i+1, got, wnt)
		}
	}
}
