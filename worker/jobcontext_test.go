package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type otherKey struct{}

// The handler's context is part of the Job's allocation; it must still behave as a
// context.WithValue over the worker's context would.

func TestHandlerContextCarriesJobAndParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "parent value"))
	defer cancelParent()
	type seen struct {
		job     *Job
		tid     string
		other   any
		timeout bool
	}
	got := make(chan seen, 1)
	w, h := handleFixture(t, Config{URL: "amqp://localhost/", App: "ctx", Timeout: time.Minute, Logger: quietLogger()},
		func(ctx context.Context, j *Job) error {
			_, hasDeadline := ctx.Deadline()
			got <- seen{job: JobFrom(ctx), tid: TIDFrom(ctx), other: ctx.Value(otherKey{}), timeout: hasDeadline}
			// Cancelling the worker's context must reach a context derived from the
			// handler's (as shutdown's hard stop does).
			child, cancel := context.WithCancel(ctx)
			defer cancel()
			cancelParent()
			select {
			case <-child.Done():
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("cancelling the worker's context did not reach the handler's")
			}
		})
	w.hardCtx = parent
	ack := &nopAck{}
	d := amqp.Delivery{Acknowledger: ack, MessageId: "m-1", Headers: amqp.Table{HeaderTID: "tid-1"}}
	w.handle(nil, h, &d)

	s := <-got
	if s.job == nil || s.job.ID != "m-1" {
		t.Fatalf("JobFrom(ctx) = %+v, want the job of message m-1", s.job)
	}
	if s.tid != "tid-1" {
		t.Errorf("TIDFrom(ctx) = %q, want tid-1", s.tid)
	}
	if s.other != "parent value" {
		t.Errorf("ctx.Value(otherKey) = %v, want the worker context's value", s.other)
	}
	if !s.timeout {
		t.Error("the handler's context has no deadline although Timeout is set")
	}
	// The handler returns nil only if the cancellation arrived; a nil return is acked,
	// a failure is not (MaxAttempts 3 would retry it in-process, so look at acks).
	if ack.acks.Load() != 1 {
		t.Errorf("acks = %d, want 1 (cancellation did not propagate)", ack.acks.Load())
	}
}
