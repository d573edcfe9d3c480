package worker

import (
	"context"
	"testing"
	"time"
)

func TestEventRetryIsSeenByOneSubscriberOnly(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 20*time.Second)
	appA, appB := uniq(t), uniq(t)
	event := uniq(t) + ".created"
	cfg := baseConfig(t, appA)
	a.deleteLater(append(queuesOf(EventQueue(appA, event), cfg.Retry), queuesOf(EventQueue(appB, event), cfg.Retry)...), event)

	wa, _ := New(cfg)
	aDone := make(chan *Job, 4)
	_ = wa.HandleEvent(event, func(ctx context.Context, j *Job) error {
		if string(j.Body) == "e" && j.Attempt == 1 {
			return errBoom
		}
		aDone <- j
		return nil
	})
	cfgB := baseConfig(t, appB)
	cfgB.Concurrency = 1 // B handles its queue in order
	wb, _ := New(cfgB)
	bSeen := make(chan string, 8)
	_ = wb.HandleEvent(event, func(ctx context.Context, j *Job) error {
		bSeen <- string(j.Body)
		return nil
	})
	start(t, wa)
	start(t, wb)
	p := newPublisher(t, appA)
	if err := p.PublishEvent(ctx, event, []byte("e")); err != nil {
		t.Fatal(err)
	}
	j := recv(t, ctx, aDone)
	if string(j.Body) != "e" || j.Attempt != 2 || j.Queue != EventQueue(appA, event) {
		t.Errorf("A's retry = %q attempt %d from %q", j.Body, j.Attempt, j.Queue)
	}
	// A retry copy leaking to B would be in B's queue by now, ahead of the sentinel.
	if err := p.PublishEvent(ctx, event, []byte("sentinel")); err != nil {
		t.Fatal(err)
	}
	if got := []string{recv(t, ctx, bSeen), recv(t, ctx, bSeen)}; got[0] != "e" || got[1] != "sentinel" {
		t.Errorf("B saw %v, want [e sentinel]: a retry for A reached B", got)
	}
	if j := recv(t, ctx, aDone); string(j.Body) != "sentinel" {
		t.Errorf("A saw %q", j.Body)
	}
}
