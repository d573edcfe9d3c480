package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/redact"
)

const (
	heartbeat         = 10 * time.Second
	reconnectMinDelay = 100 * time.Millisecond
	reconnectMaxDelay = 10 * time.Second
)

// dial opens a connection; errors name the URL without its password.
func dial(fn func(string) (*amqp.Connection, error), url, name string) (*amqp.Connection, error) {
	var (
		conn *amqp.Connection
		err  error
	)
	if fn != nil {
		conn, err = fn(url)
	} else {
		props := amqp.NewConnectionProperties()
		props.SetClientConnectionName(name)
		conn, err = amqp.DialConfig(url, amqp.Config{Heartbeat: heartbeat, Properties: props})
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", redact.URL(url), redact.Error(err, url))
	}
	return conn, nil
}

// session is one connection with everything declared and opened on it. When any of its
// channels or the connection dies the whole session is torn down and rebuilt.
type session struct {
	conn *amqp.Connection
	pub  *confirmer
	cons []*consumer

	dead     chan struct{}
	deadOnce sync.Once
	wg       sync.WaitGroup // watcher goroutines
}

// consumer is one handler's channel; its fields are guarded by Worker.mu.
type consumer struct {
	h      *handler
	ch     *amqp.Channel
	tag    string
	active bool
}

func (s *session) kill() { s.deadOnce.Do(func() { close(s.dead) }) }

// close closes the connection (the broker requeues whatever is unacked) and waits for
// the watchers.
func (s *session) close() {
	s.kill()
	_ = s.conn.Close()
	s.wg.Wait()
}

// connect dials and declares the topology of every handler, then opens the publish and
// consumer channels. Consumers are started by the caller.
func (w *Worker) connect(ctx context.Context) (*session, error) {
	conn, err := dial(w.cfg.Dial, w.cfg.URL, w.cfg.App+"-worker")
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, dead: make(chan struct{})}
	if err := w.setup(s); err != nil {
		s.close()
		return nil, err
	}
	return s, ctx.Err()
}

func (w *Worker) setup(s *session) error {
	// Watch first so that nothing that dies during setup goes unnoticed.
	s.watch(w, "connection", s.conn.NotifyClose(make(chan *amqp.Error, 1)))
	blocked := s.conn.NotifyBlocked(make(chan amqp.Blocking, 1))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for b := range blocked {
			w.stats.blocked.Store(b.Active)
			if b.Active {
				w.log.Warn("broker blocked the connection", "reason", b.Reason)
			} else {
				w.log.Info("broker unblocked the connection")
			}
		}
		w.stats.blocked.Store(false)
	}()

	ch, err := s.conn.Channel()
	if err != nil {
		return fmt.Errorf("open setup channel: %w", err)
	}
	for _, h := range w.handlers {
		if err := w.declare(ch, h); err != nil {
			return err
		}
	}
	_ = ch.Close()

	if s.pub, err = newConfirmer(s.conn, w.cfg.PublishTimeout, w.cfg.QueueType); err != nil {
		return err
	}
	s.watch(w, "publish channel", s.pub.ch.NotifyClose(make(chan *amqp.Error, 1)))
	for _, h := range w.handlers {
		if !h.event {
			s.pub.markDeclared("q:" + h.queue)
		}
		ch, err := s.conn.Channel()
		if err != nil {
			return fmt.Errorf("open consumer channel for %q: %w", h.queue, err)
		}
		if err := ch.Qos(w.cfg.Prefetch, 0, false); err != nil {
			return fmt.Errorf("set prefetch %d for %q: %w", w.cfg.Prefetch, h.queue, err)
		}
		s.watch(w, "consumer channel "+h.queue, ch.NotifyClose(make(chan *amqp.Error, 1)))
		s.cons = append(s.cons, &consumer{h: h, ch: ch})
	}
	return nil
}

func (s *session) watch(w *Worker, what string, c chan *amqp.Error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err, ok := <-c; ok && err != nil {
			w.log.Warn("lost "+what, "err", err)
		}
		s.kill()
		for range c {
		}
	}()
}

// declare declares a handler's queue (bound to its exchange for events), its dead
// queue and its retry tiers, which dead-letter into the handler's own queue through
// the default exchange so that no other subscriber sees a retry.
func (w *Worker) declare(ch *amqp.Channel, h *handler) error {
	if h.event {
		if err := ch.ExchangeDeclare(h.name, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %q: %w", h.name, err)
		}
	}
	if _, err := ch.QueueDeclare(h.queue, true, false, false, false, queueArgs(w.cfg.QueueType)); err != nil {
		return fmt.Errorf("declare queue %q: %w", h.queue, err)
	}
	if h.event {
		if err := ch.QueueBind(h.queue, "", h.name, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to exchange %q: %w", h.queue, h.name, err)
		}
	}
	if _, err := ch.QueueDeclare(DeadQueue(h.queue), true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %q: %w", DeadQueue(h.queue), err)
	}
	for _, t := range h.tiers {
		args := amqp.Table{
			"x-message-ttl":             t.delay.Milliseconds(),
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": h.queue,
		}
		if _, err := ch.QueueDeclare(t.queue, true, false, false, false, args); err != nil {
			return fmt.Errorf("declare queue %q: %w", t.queue, err)
		}
	}
	return nil
}

// reconnectDelay is the wait before reconnect attempt n (0-based): doubling from
// reconnectMinDelay to reconnectMaxDelay, jittered into [d/2, d].
func reconnectDelay(n int, rnd func() float64) time.Duration {
	d := reconnectMinDelay
	for i := 0; i < n && d < reconnectMaxDelay; i++ {
		d *= 2
	}
	d = min(d, reconnectMaxDelay)
	return d/2 + time.Duration(rnd()*float64(d/2))
}
