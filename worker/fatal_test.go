package worker

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Issue 12, defect 7 (and issue 11, item 8): what retrying cannot fix is reported.
// Each case must end Run (or be refused by New or HandleTask) with an error, not be
// retried until the context ends.

// runUntilError runs w until it returns or ctx ends; it fails the test when Run is
// still retrying at the end.
func runUntilError(t *testing.T, w *Worker, within time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	err := w.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Run retried for %v instead of reporting the problem (returned %v)", within, err)
	}
	if err == nil {
		t.Fatal("Run returned nil")
	}
	if !IsConfigError(err) {
		t.Errorf("Run = %v (%T), want a *ConfigError", err, err)
	}
	return err
}

func TestRunReportsBadCredentials(t *testing.T) {
	app := uniq(t)
	cfg := baseConfig(t, app)
	u, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("guest", "not-the-password")
	cfg.URL = u.String()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.HandleTask(app+".job.run", func(context.Context, *Job) error { return nil }); err != nil {
		t.Fatal(err)
	}
	err = runUntilError(t, w, 5*time.Second)
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("error shows the password: %v", err)
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Errorf("Run = %v, want the broker's ACCESS_REFUSED in the chain", err)
	}
}

func TestRunReportsQueueDeclaredWithOtherArguments(t *testing.T) {
	a := newAdmin(t)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.QueueType = QueueQuorum
	a.deleteLater(queuesOf(task, cfg.Retry))
	if _, err := a.channel().QueueDeclare(task, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(context.Context, *Job) error { return nil })
	err := runUntilError(t, w, 5*time.Second)
	if !strings.Contains(err.Error(), task) {
		t.Errorf("error %q does not name the queue", err)
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		t.Errorf("Run = %v, want the broker's PRECONDITION_FAILED in the chain", err)
	}
}

func TestRetryTTLTheBrokerRejectsIsReported(t *testing.T) {
	app := uniq(t)
	cfg := baseConfig(t, app)
	// 30 attempts doubling from 1s, unbounded: the last tiers exceed the broker's
	// longest TTL (10 years).
	cfg.Retry = RetryPolicy{MaxAttempts: 40, MinDelay: time.Second}
	w, err := New(cfg)
	if err != nil {
		if !IsConfigError(err) || !strings.Contains(err.Error(), "longest TTL") {
			t.Errorf("New = %v, want a *ConfigError about the TTL", err)
		}
		return // refused before any connection
	}
	task := app + ".job.run"
	newAdmin(t).deleteLater(queuesOf(task, cfg.Retry))
	if err := w.HandleTask(task, func(context.Context, *Job) error { return nil }); err != nil {
		return
	}
	runUntilError(t, w, 5*time.Second)
}

func TestNameOverAMQPLimitIsReported(t *testing.T) {
	app := uniq(t)
	cfg := baseConfig(t, app)
	task := app + ".job." + strings.Repeat("x", 254-len(app)-5)
	if len(task) != 254 {
		t.Fatalf("task name is %d bytes", len(task))
	}
	w, _ := New(cfg)
	if err := w.HandleTask(task, func(context.Context, *Job) error { return nil }); err != nil {
		if !IsConfigError(err) || !strings.Contains(err.Error(), "over AMQP's 255") {
			t.Errorf("HandleTask = %v, want a *ConfigError about the length", err)
		}
		return // refused before any connection
	}
	newAdmin(t).deleteLater([]string{task})
	runUntilError(t, w, 5*time.Second)
}
