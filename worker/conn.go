package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/redact"
)

const (
	heartbeat         = 10 * time.Second
	reconnectMinDelay = 100 * time.Millisecond
	reconnectMaxDelay = 10 * time.Second
)

// urlList is URL followed by URLs.
func urlList(url string, urls []string) []string {
	var out []string
	if url != "" {
		out = append(out, url)
	}
	return append(out, urls...)
}

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

// dialAny connects to the first of urls that answers, in the failover order. When
// every URL refused the connection for good (credentials, vhost), the error is a
// *ConfigError; otherwise it is worth retrying.
func dialAny(ctx context.Context, fn func(string) (*amqp.Connection, error), urls []string, failover string, rnd func() float64, name string, log *slog.Logger) (*amqp.Connection, error) {
	order := make([]string, len(urls))
	copy(order, urls)
	if failover == FailoverRandom {
		for i := len(order) - 1; i > 0; i-- {
			j := int(rnd() * float64(i+1))
			order[i], order[j] = order[j], order[i]
		}
	}
	var errs []error
	allRefused := true
	for _, u := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		conn, err := dial(fn, u, name)
		if err == nil {
			if len(errs) > 0 {
				log.Warn("connected to a later broker URL", "url", redact.URL(u), "failed", len(errs))
			}
			return conn, nil
		}
		errs = append(errs, err)
		allRefused = allRefused && refused(err)
	}
	err := errors.Join(errs...)
	if allRefused {
		return nil, &ConfigError{Op: "connect", Err: err}
	}
	return nil, err
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

	// seen counts deliveries since the last check of an idle consumer
	// (checkConsumers).
	seen atomic.Uint64
}

func (s *session) kill() { s.deadOnce.Do(func() { close(s.dead) }) }

// close closes the connection (the broker requeues whatever is unacked) and waits for
// the watchers.
func (s *session) close() {
	s.kill()
	_ = s.conn.Close()
	s.wg.Wait()
	if s.pub != nil {
		s.pub.wait()
	}
}

// connect dials and declares the topology of every handler, then opens the publish and
// consumer channels. Consumers are started by the caller.
func (w *Worker) connect(ctx context.Context) (*session, error) {
	conn, err := dialAny(ctx, w.cfg.Dial, w.urls, w.cfg.Failover, w.rnd, w.cfg.App+"-worker", w.log)
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
		if err := w.topo.declare(ch, h); err != nil {
			if f := asFatal("declare topology", err); f != nil {
				return f
			}
			return err
		}
	}
	_ = ch.Close()

	if s.pub, err = newConfirmer(s.conn, w.cfg.PublishTimeout, w.topo); err != nil {
		return err
	}
	s.watch(w, "publish channel", s.pub.ch.NotifyClose(make(chan *amqp.Error, 1)))
	for _, h := range w.handlers {
		s.pub.markDeclared(h.queue)
		for _, d := range h.tiers {
			s.pub.markDeclared(retryQueue(h.queue, d))
		}
		s.pub.markDeclared(DeadQueue(h.queue))
		ch, err := s.conn.Channel()
		if err != nil {
			return fmt.Errorf("open consumer channel for %q: %w", h.queue, err)
		}
		if err := ch.Qos(w.cfg.Prefetch, 0, false); err != nil {
			return fmt.Errorf("set prefetch %d for %q: %w", w.cfg.Prefetch, h.queue, err)
		}
		s.watch(w, "consumer channel "+h.queue, ch.NotifyClose(make(chan *amqp.Error, 1)))
		c := &consumer{h: h, ch: ch}
		s.watchCancel(w, c, ch.NotifyCancel(make(chan string, 1)))
		s.cons = append(s.cons, c)
	}
	if w.cfg.ConsumerCheck > 0 {
		s.wg.Go(func() { w.checkConsumers(s) })
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

// watchCancel restores a consumer that the broker cancelled (basic.cancel: its queue
// was deleted, or its leader moved).
func (s *session) watchCancel(w *Worker, c *consumer, tags chan string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for tag := range tags {
			w.restoreConsumer(s, c, tag)
		}
	}()
}

// restoreConsumer declares a cancelled consumer's queue again and consumes again.
// A failure that reconnecting may fix rebuilds the session; a refusal ends Run.
func (w *Worker) restoreConsumer(s *session, c *consumer, tag string) {
	w.mu.Lock()
	if c.tag != tag || !c.active {
		w.mu.Unlock()
		return // cancelled by us, or already replaced
	}
	c.active = false
	w.stats.consumers.Add(-1)
	w.stats.cancels.Add(1)
	w.mu.Unlock()
	w.log.Warn("broker cancelled the consumer; declaring its queue again", "queue", c.h.queue)
	w.redeclareAndConsume(s, c)
}

func (w *Worker) redeclareAndConsume(s *session, c *consumer) {
	err := func() error {
		ch, err := s.conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel to declare %q again: %w", c.h.queue, err)
		}
		defer ch.Close()
		return w.topo.declare(ch, c.h)
	}()
	if err != nil {
		if f := asFatal("declare topology", err); f != nil {
			w.fail(f)
			return
		}
		w.log.Warn("declare after consumer cancel failed; reconnecting", "queue", c.h.queue, "err", err)
		s.kill()
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.active || w.paused || w.stopping || w.sess != s {
		return // the breaker or the next session starts it
	}
	if err := w.startConsumerLocked(s, c); err != nil {
		w.log.Warn("consume again after cancel failed; reconnecting", "queue", c.h.queue, "err", err)
		s.kill()
	}
}

// checkConsumers runs Config.ConsumerCheck for the session's consumers until it
// dies: a consumer that got nothing since the last check and has nothing in flight
// asks whether its queue still exists and holds no ready jobs; if not, the broker
// dropped it without a basic.cancel, and it consumes again.
func (w *Worker) checkConsumers(s *session) {
	t := time.NewTicker(w.cfg.ConsumerCheck)
	defer t.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-t.C:
		}
		for _, c := range s.cons {
			w.mu.Lock()
			tag, live := c.tag, c.active && !w.paused && !w.stopping && w.sess == s
			w.mu.Unlock()
			seen := c.seen.Swap(0) // deliveries since the last check
			if !live || seen > 0 || c.h.m.inFlight.Load() > 0 {
				continue
			}
			why, err := w.consumerLost(s, c.h.queue)
			if err != nil {
				w.log.Debug("check consumer", "queue", c.h.queue, "err", err)
				continue
			}
			if why != "" {
				w.restoreLost(s, c, tag, why)
			}
		}
	}
}

// consumerLost says why an idle consumer of queue has been dropped by the broker,
// or "" when it may simply have nothing to do.
func (w *Worker) consumerLost(s *session, queue string) (string, error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return "", fmt.Errorf("open channel: %w", err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var aerr *amqp.Error
	switch {
	case errors.As(err, &aerr) && aerr.Code == amqp.NotFound:
		return "its queue is gone", nil // the channel is closed by the error
	case err != nil:
		return "", fmt.Errorf("inspect queue %q: %w", queue, err)
	}
	_ = ch.Close()
	if q.Messages > 0 {
		return fmt.Sprintf("its queue holds %d ready jobs it is not given", q.Messages), nil
	}
	return "", nil
}

// restoreLost replaces a consumer the broker dropped without basic.cancel: its tag
// is cancelled (the broker forgot it and says cancel-ok; the client closes its
// deliveries, so its goroutines end), and it consumes again.
func (w *Worker) restoreLost(s *session, c *consumer, tag, why string) {
	w.mu.Lock()
	if c.tag != tag || !c.active || w.sess != s {
		w.mu.Unlock()
		return
	}
	c.active = false
	w.stats.consumers.Add(-1)
	w.stats.lost.Add(1)
	w.mu.Unlock()
	w.log.Warn("the broker dropped the consumer without basic.cancel; consuming again", "queue", c.h.queue, "why", why)
	if err := c.ch.Cancel(tag, false); err != nil {
		w.log.Warn("cancel the lost consumer failed; reconnecting", "queue", c.h.queue, "err", err)
		s.kill()
		return
	}
	w.redeclareAndConsume(s, c)
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
