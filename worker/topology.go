package worker

import (
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// topology holds what decides the arguments of the queues the runtime declares. The
// arguments are a pure function of it and the queue's name, so every declarer (worker,
// publisher, dead-letter tool) declares the same queue the same way.
type topology struct {
	queueType     string
	deliveryLimit int // quorum only; -1 none
}

// jobQueueArgs are the arguments of a task or event queue. Classic queues get none, so
// that a queue someone else declared without arguments stays equivalent. Quorum queues
// have the delivery limit as a backstop against poison messages, dead-lettered by the
// broker (at least once) into the queue's dead queue.
func (t topology) jobQueueArgs(queue string) amqp.Table {
	if t.queueType != QueueQuorum {
		return nil
	}
	args := amqp.Table{"x-queue-type": QueueQuorum}
	if t.deliveryLimit > 0 {
		args["x-delivery-limit"] = int64(t.deliveryLimit)
		args["x-dead-letter-exchange"] = ""
		args["x-dead-letter-routing-key"] = DeadQueue(queue)
		args["x-dead-letter-strategy"] = "at-least-once"
		args["x-overflow"] = "reject-publish"
	}
	return args
}

// deadQueueArgs are the arguments of a dead queue.
func (t topology) deadQueueArgs() amqp.Table {
	if t.queueType == QueueQuorum {
		return amqp.Table{"x-queue-type": QueueQuorum}
	}
	return nil
}

// tierArgs are the arguments of a delay queue: one queue-level TTL, after which the
// broker dead-letters the message into the job's own queue through the default
// exchange (never to an event's fanout exchange, so no other subscriber sees it).
func (t topology) tierArgs(queue string, delay time.Duration) amqp.Table {
	args := amqp.Table{
		"x-message-ttl":             delay.Milliseconds(),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": queue,
	}
	if t.queueType == QueueQuorum {
		args["x-queue-type"] = QueueQuorum
		args["x-dead-letter-strategy"] = "at-least-once"
		args["x-overflow"] = "reject-publish"
	}
	return args
}

func declareQueue(ch *amqp.Channel, name string, args amqp.Table) error {
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %q: %w", name, err)
	}
	return nil
}

// declareJobQueue declares a job queue and its dead queue (first, since a quorum job
// queue dead-letters into it).
func (t topology) declareJobQueue(ch *amqp.Channel, queue string) error {
	if err := declareQueue(ch, DeadQueue(queue), t.deadQueueArgs()); err != nil {
		return err
	}
	return declareQueue(ch, queue, t.jobQueueArgs(queue))
}

func (t topology) declareTier(ch *amqp.Channel, queue string, delay time.Duration) error {
	return declareQueue(ch, retryQueue(queue, delay), t.tierArgs(queue, delay))
}

// declare declares a handler's queue (bound to its exchange for events), its dead
// queue and its retry tiers.
func (t topology) declare(ch *amqp.Channel, h *handler) error {
	if h.event {
		if err := ch.ExchangeDeclare(h.name, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %q: %w", h.name, err)
		}
	}
	if err := t.declareJobQueue(ch, h.queue); err != nil {
		return err
	}
	if h.event {
		if err := ch.QueueBind(h.queue, "", h.name, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to exchange %q: %w", h.queue, h.name, err)
		}
	}
	for _, d := range h.tiers {
		if err := t.declareTier(ch, h.queue, d); err != nil {
			return err
		}
	}
	return nil
}
