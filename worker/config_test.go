package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{Prefetch: -1, Concurrency: -2, QueueType: "stream",
		Retry:   RetryPolicy{MinDelay: time.Microsecond, MaxDelay: -1, Mode: "later"},
		Breaker: BreakerConfig{Enabled: true, FailureRatio: 2}})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	if !IsConfigError(err) {
		t.Errorf("New = %T, want *ConfigError", err)
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
	w := &Worker{}
	h := &handler{retry: RetryPolicy{MinDelay: time.Second}.withDefaults()}
	if got := w.retryDelay(h, 1, RetryAfter(3*time.Second, base)); got != 3*time.Second {
		t.Errorf("retryDelay(RetryAfter 3s) = %v", got)
	}
	if got := w.retryDelay(h, 1, RetryAfter(3*time.Second+time.Millisecond, base)); got != 3100*time.Millisecond {
		t.Errorf("retryDelay(RetryAfter 3.001s) = %v, want it rounded up to 3.1s", got)
	}
	h.retry.MaxDelay = 5 * time.Second
	if got := w.retryDelay(h, 1, RetryAfter(time.Hour, base)); got != 5*time.Second {
		t.Errorf("retryDelay(RetryAfter 1h) = %v, want MaxDelay", got)
	}
	if got := w.retryDelay(h, 2, base); got != 2*time.Second {
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
