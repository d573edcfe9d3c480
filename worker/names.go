package worker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TaskQueue returns the durable queue that holds the task; it is the task name itself.
func TaskQueue(task string) string { return task }

// EventQueue returns the queue through which app subscribes to event: "<app>.<event>".
func EventQueue(app, event string) string { return app + "." + event }

// DeadQueue returns the dead-letter queue of a job queue: "<queue>.dead".
func DeadQueue(queue string) string { return queue + ".dead" }

// RetryQueues returns the names of the TTL retry-tier queues a worker declares for queue
// under policy p, shortest delay first. It is nil in RetryInProcess mode, when p allows a
// single attempt, or when p is invalid.
func RetryQueues(queue string, p RetryPolicy) []string {
	p = p.withDefaults()
	if p.validate() != nil || p.Mode != RetryBroker {
		return nil
	}
	ts := p.tiers(queue)
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.queue
	}
	return names
}

// retryQueue names the tier that holds copies delayed by d.
func retryQueue(queue string, d int64) string {
	return queue + ".retry." + strconv.FormatInt(d, 10) + "ms"
}

// ValidateApp checks that app is a single name segment ([a-z][a-z0-9_-]*).
func ValidateApp(app string) error {
	if err := validateSegment(app); err != nil {
		return fmt.Errorf("invalid app name %q: %w", app, err)
	}
	return nil
}

// ValidateTask checks that task is a valid task name ("app.model.verb": at least three
// segments of [a-z][a-z0-9_-]*) owned by app, i.e. whose first segment is app. Only the
// owning app may publish or handle a task.
func ValidateTask(app, task string) error {
	segs, err := splitName(task)
	if err != nil {
		return fmt.Errorf("invalid task name %q: %w", task, err)
	}
	if len(segs) < 3 {
		return fmt.Errorf("invalid task name %q: want at least 3 segments (app.model.verb), got %d", task, len(segs))
	}
	if segs[0] != app {
		return fmt.Errorf("task %q belongs to app %q, not %q: only the owning app may publish or handle it", task, segs[0], app)
	}
	return nil
}

// ValidateEvent checks that event is a valid event name ("model.verbed": at least two
// segments of [a-z][a-z0-9_-]*).
func ValidateEvent(event string) error {
	segs, err := splitName(event)
	if err != nil {
		return fmt.Errorf("invalid event name %q: %w", event, err)
	}
	if len(segs) < 2 {
		return fmt.Errorf("invalid event name %q: want at least 2 segments (model.verbed), got %d", event, len(segs))
	}
	return nil
}

func splitName(name string) ([]string, error) {
	if name == "" {
		return nil, errors.New("empty name")
	}
	segs := strings.Split(name, ".")
	for i, s := range segs {
		if err := validateSegment(s); err != nil {
			return nil, fmt.Errorf("segment %d: %w", i+1, err)
		}
	}
	return segs, nil
}

func validateSegment(s string) error {
	if s == "" {
		return errors.New("empty segment")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("character %q at %d not allowed: segments match [a-z][a-z0-9_-]*", c, i)
		}
	}
	return nil
}
