package worker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TaskQueue returns the durable queue that holds the task; it is the task name itself.
func TaskQueue(task string) string { return task }

// EventQueue returns the queue through which app subscribes to event: "<app>.<event>".
func EventQueue(app, event string) string { return app + "." + event }

// DeadQueue returns the dead-letter queue of a job queue: "<queue>.dead".
func DeadQueue(queue string) string { return queue + ".dead" }

// RetryQueues returns the names of the TTL retry-tier queues a worker declares for queue
// under policy p, shortest delay first. It is nil in RetryInProcess mode, when p allows a
// single attempt, or when p is invalid. RetryAfter and After may add tiers on demand.
func RetryQueues(queue string, p RetryPolicy) []string {
	p = p.withDefaults()
	if p.validate() != nil || p.Mode != RetryBroker {
		return nil
	}
	ds := p.tiers()
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = retryQueue(queue, d)
	}
	return names
}

// retryQueue names the tier that holds copies delayed by d (whole milliseconds).
func retryQueue(queue string, d time.Duration) string {
	return queue + retrySegment + strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// Reserved name parts: a job queue's dead and retry-tier queues are named after it with
// these, so no task or event name may contain them.
const (
	deadSuffix   = ".dead"
	retrySegment = ".retry."
	// maxName is AMQP's limit on queue and exchange names, in bytes.
	maxName = 255
)

// checkReserved rejects names that would be another queue's dead or retry queue.
func checkReserved(name string) error {
	if strings.HasSuffix(name, deadSuffix) {
		return fmt.Errorf("ends in %q, which is reserved for dead-letter queues", deadSuffix)
	}
	if strings.Contains(name, retrySegment) {
		return fmt.Errorf("contains %q, which is reserved for retry queues", retrySegment)
	}
	return nil
}

// checkLength checks that every queue derived from queue fits AMQP's 255 bytes.
func checkLength(queue string, tiers []time.Duration) error {
	longest := DeadQueue(queue)
	if len(tiers) > 0 {
		if r := retryQueue(queue, tiers[len(tiers)-1]); len(r) > len(longest) {
			longest = r
		}
	}
	if len(longest) > maxName {
		return fmt.Errorf("queue name %q is %d bytes, over AMQP's %d", truncate(longest, 40), len(longest), maxName)
	}
	return nil
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
// owning app may publish or handle a task. Names ending in ".dead" or containing
// ".retry." are reserved for the queues derived from a task, and the task's dead
// queue must fit AMQP's 255 bytes.
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
	if err := checkReserved(task); err != nil {
		return fmt.Errorf("invalid task name %q: %w", task, err)
	}
	if err := checkLength(task, nil); err != nil {
		return fmt.Errorf("invalid task name: %w", err)
	}
	return nil
}

// ValidateEvent checks that event is a valid event name ("model.verbed": at least two
// segments of [a-z][a-z0-9_-]*, with the reserved parts of ValidateTask).
func ValidateEvent(event string) error {
	segs, err := splitName(event)
	if err != nil {
		return fmt.Errorf("invalid event name %q: %w", event, err)
	}
	if len(segs) < 2 {
		return fmt.Errorf("invalid event name %q: want at least 2 segments (model.verbed), got %d", event, len(segs))
	}
	if err := checkReserved(event); err != nil {
		return fmt.Errorf("invalid event name %q: %w", event, err)
	}
	if len(event) > maxName {
		return fmt.Errorf("invalid event name %q: %d bytes, over AMQP's %d", truncate(event, 40), len(event), maxName)
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
