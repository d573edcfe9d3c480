package worker

import (
	"context"
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

// Issue 12, defect 3: a task or event whose queue would be another queue's dead or
// retry queue is rejected.
func TestReservedSuffixes(t *testing.T) {
	for _, task := range []string{"app.invoice.send.dead", "app.invoice.retry.send", "app.retry.x"} {
		if err := ValidateTask("app", task); err == nil {
			t.Errorf("ValidateTask(%q) accepted a reserved name", task)
		}
	}
	for _, event := range []string{"invoice.sent.dead", "invoice.retry.sent"} {
		if err := ValidateEvent(event); err == nil {
			t.Errorf("ValidateEvent(%q) accepted a reserved name", event)
		}
	}
	for _, ok := range []string{"app.invoice.retry", "app.dead.letter", "app.deadline.set"} {
		if err := ValidateTask("app", ok); err != nil {
			t.Errorf("ValidateTask(%q) = %v", ok, err)
		}
	}
	w, err := New(Config{URL: "amqp://localhost/", App: "app", Prefetch: 1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	nop := func(context.Context, *Job) error { return nil }
	if err := w.HandleTask("app.invoice.send", nop); err != nil {
		t.Fatal(err)
	}
	if err := w.HandleTask("app.invoice.send.dead", nop); err == nil {
		t.Error("HandleTask registered a handler for another task's dead-letter queue")
	}
}
