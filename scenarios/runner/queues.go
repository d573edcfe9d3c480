package runner

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/chaos/broker"
)

// What the run may do with the broker's queues. A private node is the run's
// own: its queues are cleared before each variant and after it. On an
// external broker the queues of the scenario's names may be someone's
// service: the run never deletes, purges or consumes from a queue that holds
// messages or has consumers it did not start, and never publishes into an
// exchange that existed before it (other apps' queues may be bound to it).
// It deletes at the end only what it created.
//
// The queues of an own worker (workers.command) are the worker's: it
// declares them, and bench never deletes or purges them, on any broker. It
// still refuses to run when they hold messages or have consumers (jobs
// would mix with someone's), and publishes where the scenario says.

// ForeignError is the refusal to run on an external broker that already
// holds queues or exchanges of the scenario's names. errors.Is(err,
// ErrEnvironment) holds: `bench run` exits 3.
type ForeignError struct {
	Queues    []QueueState // queues with messages or consumers
	Exchanges []string     // exchanges the run would publish into
	// OwnWorker: the queues are workers.command's, which bench never
	// deletes, so --namespace and --reset-queues are no way out.
	OwnWorker bool
}

// QueueState is a queue as the broker reported it.
type QueueState struct {
	Name      string
	Messages  int
	Consumers int
}

func (e *ForeignError) Error() string {
	var parts []string
	for _, q := range e.Queues {
		parts = append(parts, fmt.Sprintf("queue %q holds %s and has %s this run did not start", q.Name, plural(q.Messages, "ready message"), plural(q.Consumers, "consumer")))
	}
	for _, x := range e.Exchanges {
		parts = append(parts, fmt.Sprintf("exchange %q exists already, and the run would publish into it (reaching every queue bound to it)", x))
	}
	msg := "the external broker is in use: " + strings.Join(parts, "; ") +
		". bench never deletes, purges or consumes from a queue it did not start. "
	if e.OwnWorker {
		return msg + "The queues are your worker's (workers.command): empty them (rabbitmqctl purge_queue NAME) and stop their other consumers, " +
			"or run on a broker of its own (broker: {managed: true})"
	}
	return msg + "Run with --namespace auto to use names of the run's own, or with --reset-queues to take the queues over (their messages are deleted)"
}

// Is makes a ForeignError an environment failure.
func (e *ForeignError) Is(target error) bool { return target == ErrEnvironment }

// ownership is what the run found on the broker before a variant, and so
// what it may remove after it.
type ownership struct {
	external  bool
	reset     bool
	foreign   bool            // the queues are an own worker's: checked, never deleted
	queues    []string        // the variant's job, dead-letter and retry-tier queues
	exchanges []string        // the exchanges the run publishes into: the event, job.emit
	found     map[string]bool // queues ("q:"+name) and exchanges ("x:"+name) there before the variant
	created   []string        // exchanges the run declared during the variant (a completion event's)
	claimed   bool            // claim succeeded: release may delete; a refused run deletes nothing
}

func (v *variantRun) newOwnership() *ownership {
	o := &ownership{
		external: v.env.broker.Kind() == broker.KindExternal,
		reset:    v.r.opts.ResetQueues,
		queues:   append([]string{v.queue, v.deadQueue}, v.retryQueues...),
		found:    map[string]bool{},
	}
	if v.sc.OwnWorker() {
		// The worker's own topology: the queue the jobs go to and where its
		// final failures wait are checked; the exchanges the scenario names
		// are the worker's to publish into.
		o.foreign, o.queues = true, []string{v.queue}
		if v.deadQueue != "" {
			o.queues = append(o.queues, v.deadQueue)
		}
		return o
	}
	for _, x := range []string{v.sc.Event, v.sc.Job.Emit} {
		if x != "" {
			o.exchanges = append(o.exchanges, x)
		}
	}
	return o
}

// claim readies the broker for the variant: on the run's own node it deletes
// an earlier variant's leftovers; on an external broker it refuses foreign
// queues and exchanges (a *ForeignError), or with reset takes the queues over.
func (o *ownership) claim(w *watcher) error {
	if !o.external && !o.foreign {
		o.claimed = true
		return w.deleteQueues(o.queues)
	}
	fe := ForeignError{OwnWorker: o.foreign}
	var existing []string
	for _, q := range o.queues {
		st, exists, err := w.inspectQueue(q)
		if err != nil {
			return err
		}
		if !exists {
			continue
		}
		existing = append(existing, q)
		if st.Messages > 0 || st.Consumers > 0 {
			fe.Queues = append(fe.Queues, st)
		}
	}
	for _, x := range o.exchanges {
		exists, err := w.exchangeExists(x)
		if err != nil {
			return err
		}
		if exists {
			o.found["x:"+x] = true
			fe.Exchanges = append(fe.Exchanges, x)
		}
	}
	if o.reset && !o.foreign {
		// Taken over: deleted now, declared by the workers, deleted at the end.
		o.claimed = true
		return w.deleteQueues(existing)
	}
	if len(fe.Queues) > 0 || len(fe.Exchanges) > 0 {
		return &fe
	}
	for _, q := range existing {
		o.found["q:"+q] = true // empty and idle: used, and left in place
	}
	o.claimed = true
	return nil
}

// release removes what the variant created: on the run's own node every
// queue of the variant; on an external broker the queues and exchanges that
// were not there before it.
func (o *ownership) release(w *watcher) error {
	if !o.claimed {
		return nil
	}
	var queues, exchanges []string
	for _, q := range o.queues {
		if !o.found["q:"+q] && !o.foreign {
			queues = append(queues, q)
		}
	}
	exchanges = append(exchanges, o.created...)
	for _, x := range o.exchanges {
		if o.external && !o.found["x:"+x] {
			exchanges = append(exchanges, x)
		}
	}
	return errors.Join(w.deleteQueues(queues), w.deleteExchanges(exchanges))
}

// declared records an exchange the run created during the variant.
func (o *ownership) declared(name string) { o.created = append(o.created, name) }

// inspectQueue reports a queue's state without creating it.
func (w *watcher) inspectQueue(name string) (QueueState, bool, error) {
	ch, err := w.channel()
	if err != nil {
		return QueueState{}, false, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	var aerr *amqp.Error
	switch {
	case errors.As(err, &aerr) && aerr.Code == amqp.NotFound:
		return QueueState{Name: name}, false, nil
	case err != nil:
		return QueueState{}, false, fmt.Errorf("inspect queue %q: %w", name, err)
	}
	return QueueState{Name: name, Messages: q.Messages, Consumers: q.Consumers}, true, nil
}

// exchangeExists reports whether an exchange exists, without creating it.
func (w *watcher) exchangeExists(name string) (bool, error) {
	ch, err := w.channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	err = ch.ExchangeDeclarePassive(name, amqp.ExchangeFanout, true, false, false, false, nil)
	var aerr *amqp.Error
	switch {
	case errors.As(err, &aerr) && aerr.Code == amqp.NotFound:
		return false, nil
	case errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed:
		return true, nil // exists, of another type
	case err != nil:
		return false, fmt.Errorf("inspect exchange %q: %w", name, err)
	}
	return true, nil
}

// deleteQueues deletes queues, whatever they hold: only for queues the run owns.
func (w *watcher) deleteQueues(names []string) error {
	return w.eachOnChannel(names, "delete queue", func(ch *amqp.Channel, n string) error {
		_, err := ch.QueueDelete(n, false, false, false)
		return err
	})
}

// deleteExchanges deletes exchanges the run created.
func (w *watcher) deleteExchanges(names []string) error {
	return w.eachOnChannel(names, "delete exchange", func(ch *amqp.Channel, n string) error {
		return ch.ExchangeDelete(n, false, false)
	})
}

// eachOnChannel calls do for each name on one channel of the watcher's,
// stopping at the first error.
func (w *watcher) eachOnChannel(names []string, what string, do func(ch *amqp.Channel, name string) error) error {
	if len(names) == 0 {
		return nil
	}
	ch, err := w.channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	for _, n := range names {
		if err := do(ch, n); err != nil {
			return fmt.Errorf("%s %q: %w", what, n, err)
		}
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
