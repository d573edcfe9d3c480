package scenarios

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/benchmq/bench/worker"
)

// A namespace makes every broker name of a run its own on a shared broker:
// the app, the task, the event and job.emit get the namespace as a prefix of
// their first segment ("bench.job.process" becomes "ns-bench.job.process").
// The task's queue, its retry tiers and its dead-letter queue derive from the
// task, and an event's queue from the app, so they follow; the run publishes
// and emits into exchanges no other app binds to.

var namespaceRe = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

// CheckNamespace reports whether ns can prefix names: a letter, then up to
// 31 letters and digits.
func CheckNamespace(ns string) error {
	if !namespaceRe.MatchString(ns) {
		return fmt.Errorf("%q: want a letter, then up to 31 letters or digits (e.g. ci42)", ns)
	}
	return nil
}

// Namespaced returns a copy of s whose app, task, event and job.emit carry
// the namespace ns; "" returns s itself.
func (s *Scenario) Namespaced(ns string) (*Scenario, error) {
	if ns == "" {
		return s, nil
	}
	if err := CheckNamespace(ns); err != nil {
		return nil, fmt.Errorf("namespace %w", err)
	}
	c := *s
	prefix := func(name string) string {
		if name == "" {
			return ""
		}
		return ns + "-" + name
	}
	c.App = prefix(s.App)
	c.Task = prefix(s.Task)
	c.Event = prefix(s.Event)
	c.Job.Emit = prefix(s.Job.Emit)
	var errs []error
	if c.Task != "" {
		errs = append(errs, worker.ValidateTask(c.App, c.Task))
	}
	if c.Event != "" {
		errs = append(errs, worker.ValidateApp(c.App), worker.ValidateEvent(c.Event))
	}
	if c.Job.Emit != "" {
		errs = append(errs, worker.ValidateEvent(c.Job.Emit))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	return &c, nil
}
