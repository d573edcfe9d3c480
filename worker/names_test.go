package worker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidateTask(t *testing.T) {
	for _, tc := range []struct {
		app, task string
		ok        bool
		want      string
	}{
		{"api", "api.user.authorize", true, ""},
		{"bench", "bench.job.process", true, ""},
		{"bench", "bench.job.process.now", true, ""},
		{"bench", "bench.job_2.re-try", true, ""},
		{"bench", "api.user.authorize", false, "belongs to app \"api\""},
		{"web", "api.user.authorize", false, "only the owning app"},
		{"bench", "bench.job", false, "at least 3 segments"},
		{"bench", "", false, "empty name"},
		{"bench", "bench..process", false, "empty segment"},
		{"bench", "bench.Job.process", false, "not allowed"},
		{"bench", "bench.1job.process", false, "not allowed"},
		{"bench", "bench.job.process.", false, "empty segment"},
		{"bench", "bench.jöb.process", false, "not allowed"},
	} {
		err := ValidateTask(tc.app, tc.task)
		if tc.ok != (err == nil) {
			t.Errorf("ValidateTask(%q, %q) = %v, want ok=%v", tc.app, tc.task, err, tc.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateTask(%q, %q) = %q, want it to mention %q", tc.app, tc.task, err, tc.want)
		}
	}
}

func TestValidateEvent(t *testing.T) {
	for _, tc := range []struct {
		event string
		ok    bool
	}{
		{"user.authorized", true},
		{"org.payment.processed", true},
		{"user", false},
		{"", false},
		{"User.authorized", false},
		{"user.", false},
		{"user.authorized!", false},
		{"_user.authorized", false},
	} {
		if err := ValidateEvent(tc.event); tc.ok != (err == nil) {
			t.Errorf("ValidateEvent(%q) = %v, want ok=%v", tc.event, err, tc.ok)
		}
	}
}

func TestQueueNames(t *testing.T) {
	if got := TaskQueue("api.user.authorize"); got != "api.user.authorize" {
		t.Errorf("TaskQueue = %q", got)
	}
	if got := EventQueue("mail", "user.authorized"); got != "mail.user.authorized" {
		t.Errorf("EventQueue = %q", got)
	}
	if got := DeadQueue("mail.user.authorized"); got != "mail.user.authorized.dead" {
		t.Errorf("DeadQueue = %q", got)
	}
	p := RetryPolicy{MaxAttempts: 6, MinDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	want := []string{"q.retry.100ms", "q.retry.200ms", "q.retry.400ms", "q.retry.800ms", "q.retry.1000ms"}
	if got := RetryQueues("q", p); !slices.Equal(got, want) {
		t.Errorf("RetryQueues = %v, want %v", got, want)
	}
	// The tier set is bounded even when MaxDelay is unbounded.
	if got := RetryQueues("q", RetryPolicy{MaxAttempts: 3}); !slices.Equal(got, []string{"q.retry.100ms", "q.retry.200ms"}) {
		t.Errorf("RetryQueues(defaults, 3 attempts) = %v", got)
	}
	if got := RetryQueues("q", RetryPolicy{Mode: RetryInProcess}); got != nil {
		t.Errorf("RetryQueues(inprocess) = %v, want nil", got)
	}
	if got := RetryQueues("q", RetryPolicy{MaxAttempts: 1}); len(got) != 0 {
		t.Errorf("RetryQueues(1 attempt) = %v, want none", got)
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, MinDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := p.delay(i+1, nil); got != w*time.Millisecond {
			t.Errorf("delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	unbounded := RetryPolicy{MinDelay: time.Second}.withDefaults()
	if got := unbounded.delay(40, nil); got <= 0 {
		t.Errorf("unbounded delay(40) overflowed: %v", got)
	}
	if got := unbounded.delay(4, nil); got != 8*time.Second {
		t.Errorf("unbounded delay(4) = %v, want 8s", got)
	}

	p.Jitter = true
	for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
		rnd := func() float64 { return r }
		for n := 1; n <= 6; n++ {
			base := p.baseDelay(n)
			got := p.delay(n, rnd)
			if got < base/2 || got > base || got > p.MaxDelay {
				t.Errorf("jittered delay(%d) with rand %v = %v, want in [%v, %v]", n, r, got, base/2, base)
			}
		}
	}
	if a, b := p.delay(3, func() float64 { return 0 }), p.delay(3, func() float64 { return 0.9 }); a >= b {
		t.Errorf("jitter does not vary the delay: %v, %v", a, b)
	}
}

func TestPickTier(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 7, MinDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}.withDefaults()
	ts := p.tiers("q")
	for _, tc := range []struct {
		d     time.Duration
		queue string
		exp   string
	}{
		{100 * time.Millisecond, "q.retry.100ms", ""},
		{400 * time.Millisecond, "q.retry.400ms", ""},
		{150 * time.Millisecond, "q.retry.200ms", "150"},
		{50 * time.Millisecond, "q.retry.100ms", "50"},
		{2 * time.Second, "q.retry.2000ms", ""},
		{time.Hour, "q.retry.2000ms", ""}, // capped at the longest tier
	} {
		tr, exp := pickTier(ts, tc.d)
		if tr.queue != tc.queue || exp != tc.exp {
			t.Errorf("pickTier(%v) = %q, %q; want %q, %q", tc.d, tr.queue, exp, tc.queue, tc.exp)
		}
	}
}

func TestReconnectDelay(t *testing.T) {
	half := func() float64 { return 0.5 }
	prev := time.Duration(0)
	for n := 0; n < 20; n++ {
		d := reconnectDelay(n, half)
		if d < prev || d > reconnectMaxDelay || d < reconnectMinDelay/2 {
			t.Fatalf("reconnectDelay(%d) = %v after %v", n, d, prev)
		}
		prev = d
	}
	if prev < reconnectMaxDelay/2 {
		t.Errorf("reconnect delay never reaches the cap: %v", prev)
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{Prefetch: -1, Concurrency: -2, QueueType: "stream",
		Retry:   RetryPolicy{MinDelay: time.Microsecond, MaxDelay: -1, Mode: "later"},
		Breaker: BreakerConfig{Enabled: true, FailureRatio: 2}})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"url: required", "app: required", "prefetch -1", "concurrency -2",
		`queue type "stream"`, "min delay", "max delay", `retry mode "later"`, "failure ratio 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config error %q does not mention %q", err, want)
		}
	}
	if _, err := New(Config{URL: "amqp://x", App: "Bad"}); err == nil {
		t.Error("New accepted app name \"Bad\"")
	}
	w, err := New(Config{URL: "amqp://x", App: "bench", Prefetch: 10})
	if err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
	if err := w.HandleTask("bench.job", func(context.Context, *Job) error { return nil }); err == nil {
		t.Error("HandleTask accepted a 2-segment task")
	}
	if err := w.HandleTask("other.job.run", func(context.Context, *Job) error { return nil }); err == nil {
		t.Error("HandleTask accepted another app's task")
	}
	if err := w.HandleEvent("created", func(context.Context, *Job) error { return nil }); err == nil {
		t.Error("HandleEvent accepted a 1-segment event")
	}
	if err := w.HandleTask("bench.job.run", func(context.Context, *Job) error { return nil }); err != nil {
		t.Errorf("HandleTask(valid) = %v", err)
	}
	if err := w.HandleTask("bench.job.run", func(context.Context, *Job) error { return nil }); err == nil {
		t.Error("HandleTask accepted a duplicate registration")
	}
}

func TestErrorsClassify(t *testing.T) {
	base := errors.New("boom")
	if !IsPermanent(Permanent(base)) || IsPermanent(base) || Permanent(nil) != nil {
		t.Error("Permanent is not recognised")
	}
	if !errors.Is(Permanent(base), base) || !errors.Is(RetryAfter(time.Second, base), base) {
		t.Error("wrapped errors lose their cause")
	}
	w := &Worker{cfg: Config{Retry: RetryPolicy{MinDelay: time.Second}.withDefaults()}}
	if got := w.retryDelay(1, RetryAfter(3*time.Second, base)); got != 3*time.Second {
		t.Errorf("retryDelay(RetryAfter 3s) = %v", got)
	}
	w.cfg.Retry.MaxDelay = 5 * time.Second
	if got := w.retryDelay(1, RetryAfter(time.Hour, base)); got != 5*time.Second {
		t.Errorf("retryDelay(RetryAfter 1h) = %v, want MaxDelay", got)
	}
	if got := w.retryDelay(2, base); got != 2*time.Second {
		t.Errorf("retryDelay(attempt 2) = %v", got)
	}
}

func TestDialErrorHidesPassword(t *testing.T) {
	_, err := dial(nil, "amqp://guest:s3cret@127.0.0.1:1/", "test")
	if err == nil {
		t.Fatal("dial to port 1 succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "guest:***@") {
		t.Errorf("dial error = %q", err)
	}
}
