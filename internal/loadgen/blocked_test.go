package loadgen

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestBlockedHoldsPublishing checks the connection.blocked handling without a
// broker (raising a memory alarm would stall everyone sharing it): publishing
// waits while blocked, resumes when unblocked, and the time is accounted.
func TestBlockedHoldsPublishing(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	g, err := New(Config{URL: "amqp://localhost/", RoutingKey: "q", RunID: "r", Clock: clock, Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRun(g, clock())
	defer r.timer.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s := &session{done: make(chan struct{})}

	if err := r.waitUnblocked(ctx, s); err != nil {
		t.Fatalf("not blocked, yet waitUnblocked returned %v", err)
	}
	r.setBlocked(true)
	waited := make(chan error, 1)
	go func() { waited <- r.waitUnblocked(ctx, s) }()
	now.Add(int64(2 * time.Second))
	if st := g.Stats(); !st.Blocked || st.BlockedTime != 2*time.Second {
		t.Fatalf("while blocked: %+v", st)
	}
	select {
	case err := <-waited:
		t.Fatalf("waitUnblocked returned %v while blocked", err)
	default:
	}
	r.setBlocked(false)
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("waitUnblocked after unblocking: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("publishing never resumed after the broker unblocked")
	}
	now.Add(int64(time.Second))
	if st := g.Stats(); st.Blocked || st.BlockedTime != 2*time.Second {
		t.Fatalf("after unblocking: %+v", st)
	}

	// A connection that dies while blocked releases the wait.
	r.setBlocked(true)
	go func() { waited <- r.waitUnblocked(ctx, s) }()
	close(s.done)
	if err := <-waited; err == nil {
		t.Fatal("waitUnblocked returned nil for a dead connection")
	}
}

func TestIntendedRate(t *testing.T) {
	g, err := New(Config{URL: "amqp://localhost/", RoutingKey: "q", RunID: "r",
		Phases: []Phase{{Kind: KindSpike, Jobs: 10}, {Kind: KindRamp, From: 100, To: 300, Over: 2 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := g.IntendedRate(0); r != 0 {
		t.Fatalf("before Run: %g", r)
	}
	g.phase.Store(1)
	if r := g.IntendedRate(0); r != 0 {
		t.Fatalf("during the spike: %g", r)
	}
	g.phase.Store(2)
	g.phaseStart.Store(int64(3 * time.Second)) // the spike took 3 s
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{2 * time.Second, 0}, {3 * time.Second, 100}, {4 * time.Second, 200}, {4500 * time.Millisecond, 250}, {5 * time.Second, 0}} {
		if got := g.IntendedRate(c.at); got != c.want {
			t.Errorf("IntendedRate(%s) = %g, want %g", c.at, got, c.want)
		}
	}
}
