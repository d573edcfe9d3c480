package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// Worker consumes the tasks and events registered with HandleTask and HandleEvent.
// Register handlers, then call Run; publish with PublishTask and PublishEvent (from
// handlers, with the handler's context, so the TID carries over).
type Worker struct {
	cfg     Config
	log     *slog.Logger
	urls    []string
	topo    topology
	limiter *rate.Limiter    // the worker's shared bucket; nil without RateLimit
	rnd     func() float64   // uniform in [0, 1); replaced in tests
	now     func() time.Time // replaced in tests

	mu          sync.Mutex
	handlers    []*handler
	middleware  []Middleware
	names       map[string]bool
	running     bool
	sess        *session
	sessChanged chan struct{} // closed and replaced when sess or closed changes
	closed      bool
	paused      bool // breaker not closed: consumers cancelled
	stopping    bool
	tagSeq      int

	intakeOff atomic.Bool // paused || stopping: requeue instead of starting
	ready     chan struct{}
	readyOnce sync.Once
	stopCtx   context.Context // cancelled when intake stops for good
	hardCtx   context.Context // parent of handler contexts; cancelled after ShutdownTimeout
	poolWG    sync.WaitGroup  // consumer goroutines of every session

	fatalOnce sync.Once
	fatalErr  error
	fatalCh   chan struct{} // closed by fail

	cb       atomic.Pointer[gobreaker.TwoStepCircuitBreaker[struct{}]] // set by Run
	brState  atomic.Value                                              // string: the breaker's last state
	brOpened chan struct{}
	brMu     sync.Mutex
	brSince  time.Time     // when the breaker last left closed
	brTotal  time.Duration // completed open periods
	brEvents []transition  // waiting for OnBreakerChange
	brNotify chan struct{}

	dead  deadPending // jobs recovered whose dead-letter publish has not succeeded yet
	timed atomic.Bool // a Prometheus collector exists: time the attempts

	stats counters

	harness *harness // reports to bench when run under it (harness.go); nil otherwise

	// afterRetryPublish, if set, runs between a confirmed retry copy and the ack of
	// the original (tests crash the worker there).
	afterRetryPublish func(*Job)
}

// New validates cfg (all problems at once, as a *ConfigError) and returns a Worker.
func New(cfg Config) (*Worker, error) {
	hs, err := harnessFromEnv()
	if err == nil && hs != nil {
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		err = hs.applyConfig(&cfg, log.With("app", cfg.App))
	}
	if err != nil {
		return nil, &ConfigError{Op: "run under bench", Err: err}
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, &ConfigError{Op: "invalid worker config", Err: err}
	}
	w := &Worker{
		cfg:         cfg,
		log:         cfg.Logger.With("app", cfg.App),
		urls:        urlList(cfg.URL, cfg.URLs),
		topo:        topology{queueType: cfg.QueueType, deliveryLimit: cfg.DeliveryLimit},
		rnd:         rand.Float64,
		now:         time.Now,
		names:       map[string]bool{},
		sessChanged: make(chan struct{}),
		ready:       make(chan struct{}),
		fatalCh:     make(chan struct{}),
		brOpened:    make(chan struct{}, 1),
		brNotify:    make(chan struct{}, 1),
		harness:     hs,
	}
	w.brState.Store("disabled")
	if cfg.RateLimit > 0 {
		w.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), cfg.Burst)
	}
	if cfg.Prefetch == 0 {
		w.log.Warn("prefetch 0 is unlimited: the broker pushes the whole queue into this process")
	}
	return w, nil
}

// HandleTask registers h for task, which must be owned by the worker's app. It must be
// called before Run. Its errors are *ConfigError.
func (w *Worker) HandleTask(task string, h HandlerFunc, opts ...HandlerOption) error {
	op := fmt.Sprintf("handle task %q", task)
	if err := ValidateTask(w.cfg.App, task); err != nil {
		return &ConfigError{Op: op, Err: err}
	}
	return w.register(op, &handler{name: task, queue: TaskQueue(task), fn: h}, opts)
}

// HandleEvent subscribes the worker's app to event through the queue
// EventQueue(app, event). It must be called before Run. Its errors are *ConfigError.
func (w *Worker) HandleEvent(event string, h HandlerFunc, opts ...HandlerOption) error {
	op := fmt.Sprintf("handle event %q", event)
	if err := ValidateEvent(event); err != nil {
		return &ConfigError{Op: op, Err: err}
	}
	return w.register(op, &handler{name: event, queue: EventQueue(w.cfg.App, event), event: true, fn: h}, opts)
}

// register resolves a handler's settings (the worker's, overridden by opts) and adds it.
func (w *Worker) register(op string, h *handler, opts []HandlerOption) error {
	if h.fn == nil {
		return &ConfigError{Op: op, Err: errors.New("nil handler")}
	}
	var o handlerOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return &ConfigError{Op: op, Err: err}
	}
	if err := w.harness.applyOptions(&o); err != nil {
		return &ConfigError{Op: op, Err: err}
	}
	h.recovery, h.middleware = o.recovery, o.middleware
	h.retry, h.timeout, h.concurrency, h.limiter = w.cfg.Retry, w.cfg.Timeout, w.cfg.Concurrency, w.limiter
	if o.retry != nil {
		h.retry = o.retry.withDefaults()
	}
	if o.timeout != nil {
		h.timeout = *o.timeout
	}
	if o.concurrency != nil {
		h.concurrency = max(*o.concurrency, 1)
	}
	if o.rate != nil {
		h.limiter = nil
		if *o.rate > 0 {
			h.limiter = rate.NewLimiter(rate.Limit(*o.rate), max(o.burst, 1))
		}
	}
	if h.retry.Mode == RetryBroker {
		h.tiers = h.retry.tiers()
	}
	if err := checkLength(h.queue, h.tiers); err != nil {
		return &ConfigError{Op: op, Err: err}
	}
	h.m = newHandlerMetrics()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		return &ConfigError{Op: op, Err: errors.New("worker already running")}
	}
	if w.names[h.queue] {
		return &ConfigError{Op: op, Err: errors.New("already registered")}
	}
	w.names[h.queue] = true
	w.handlers = append(w.handlers, h)
	return nil
}

// Ready is closed once the topology is declared and the consumers are active for the
// first time.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// Run connects, declares the topology, consumes until ctx is cancelled and reconnects
// after connection or channel loss. On cancellation it stops intake, waits up to
// ShutdownTimeout for in-flight jobs, cancels and requeues the rest, and closes the
// connection. It returns nil after a graceful shutdown, and a *ConfigError, after the
// same shutdown, when the broker refuses what the configuration asks for (see
// ConfigError): that is not retried. No goroutine it started outlives it, except a
// handler abandoned after its timeout (see Stats.Abandoned). Run may be called once.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running || w.closed {
		w.mu.Unlock()
		return errors.New("run worker: already run")
	}
	w.running = true
	for _, h := range w.handlers {
		h.call = wrap(h.fn, w.middleware, h.middleware)
	}
	w.mu.Unlock()
	if w.harness != nil {
		if err := w.harness.start(ctx, w); err != nil {
			return err
		}
		defer w.harness.close(w) // after the shutdown: every outcome is reported
	}

	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	hardCtx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	w.stopCtx, w.hardCtx = stopCtx, hardCtx

	var ctrl sync.WaitGroup
	if w.cfg.Breaker.Enabled {
		w.cb.Store(w.newBreaker())
		w.brState.Store(gobreaker.StateClosed.String())
		ctrl.Add(2)
		go func() {
			defer ctrl.Done()
			w.breakerLoop(stopCtx)
		}()
		go func() {
			defer ctrl.Done()
			w.notifyLoop(stopCtx)
		}()
	}

	sess, err := w.serve(ctx)
	w.shutdown(sess, hardStop)
	stop()
	ctrl.Wait()
	if err != nil {
		w.log.Error("worker stopped: the broker refused its configuration", "err", err)
	}
	return err
}

// serve keeps a session up until ctx ends or the broker refuses the configuration; it
// returns the live session, if any, and the refusal.
func (w *Worker) serve(ctx context.Context) (*session, error) {
	var sess *session
	for failures := 0; ; {
		if sess == nil {
			s, err := w.connect(ctx)
			if err == nil {
				if err = w.activate(s); err != nil {
					w.deactivate(s)
					s.close()
				}
			} else if s != nil {
				s.close()
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil
				}
				if f := asFatal("start consumers", err); f != nil {
					return nil, f
				}
				d := reconnectDelay(failures, w.rnd)
				failures++
				w.log.Warn("connect failed; retrying", "err", err, "in", d)
				if !sleepCtx(ctx, d) {
					return nil, nil
				}
				continue
			}
			sess = s
			w.readyOnce.Do(func() { close(w.ready) })
		}
		select {
		case <-ctx.Done():
			return sess, nil
		case <-w.fatalCh:
			return sess, w.fatalErr
		case <-sess.dead:
			w.deactivate(sess)
			sess.close()
			sess = nil
			w.stats.reconnects.Add(1)
			failures = 0
			w.log.Warn("connection lost; reconnecting")
			if !sleepCtx(ctx, reconnectDelay(0, w.rnd)) {
				return nil, nil
			}
		}
	}
}

// fail ends Run with err (a *ConfigError) from wherever it was found.
func (w *Worker) fail(err error) {
	w.fatalOnce.Do(func() {
		w.fatalErr = err
		close(w.fatalCh)
	})
}

// activate publishes the session and starts its consumers unless the breaker holds
// them.
func (w *Worker) activate(s *session) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.paused {
		for _, c := range s.cons {
			if err := w.startConsumerLocked(s, c); err != nil {
				return err
			}
		}
	}
	w.sess = s
	close(w.sessChanged)
	w.sessChanged = make(chan struct{})
	return nil
}

func (w *Worker) deactivate(s *session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range s.cons {
		if c.active {
			c.active = false
			w.stats.consumers.Add(-1)
		}
	}
	if w.sess == s {
		w.sess = nil
	}
}

// shutdown stops intake, drains in-flight jobs up to ShutdownTimeout, then cancels the
// rest (they requeue) and closes the session. Handlers that ignore their cancelled
// context are abandoned when they have a timeout (see attempt).
func (w *Worker) shutdown(s *session, hardStop context.CancelFunc) {
	w.mu.Lock()
	w.stopping = true
	w.intakeOff.Store(true)
	if s != nil {
		w.stopConsumersLocked(s)
	}
	w.mu.Unlock()

	drained := make(chan struct{})
	go func() {
		w.poolWG.Wait()
		close(drained)
	}()
	t := time.NewTimer(w.cfg.ShutdownTimeout)
	select {
	case <-drained:
	case <-t.C:
		w.log.Warn("shutdown timeout: cancelling in-flight jobs", "in_flight", w.stats.inFlight.Load())
		hardStop()
		if s != nil {
			// Closing the channels stops the deliveries of any consumer whose
			// cancel was lost and makes the broker requeue what is unacked.
			_ = s.conn.Close()
		}
		<-drained
	}
	t.Stop()

	w.mu.Lock()
	w.closed = true
	w.sess = nil
	close(w.sessChanged)
	w.sessChanged = make(chan struct{})
	w.mu.Unlock()
	if s != nil {
		w.deactivate(s)
		s.close()
	}
}

func (w *Worker) startConsumerLocked(s *session, c *consumer) error {
	w.tagSeq++
	tag := w.cfg.App + "-" + strconv.Itoa(w.tagSeq)
	deliveries, err := c.ch.Consume(c.h.queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume queue %q: %w", c.h.queue, err)
	}
	c.tag, c.active = tag, true
	w.stats.consumers.Add(1)
	for range c.h.concurrency {
		w.poolWG.Add(1)
		go w.loop(s, c.h, deliveries, &c.seen)
	}
	return nil
}

// stopConsumersLocked cancels the consumers; what they had prefetched still arrives on
// their delivery channels and is requeued by the loops, which then exit.
func (w *Worker) stopConsumersLocked(s *session) {
	for _, c := range s.cons {
		if !c.active {
			continue
		}
		c.active = false
		w.stats.consumers.Add(-1)
		if err := c.ch.Cancel(c.tag, false); err != nil {
			w.log.Debug("cancel consumer", "queue", c.h.queue, "err", err)
		}
	}
}

// session returns the live session, waiting for a reconnect if there is none.
func (w *Worker) session(ctx context.Context) (*session, error) {
	for {
		w.mu.Lock()
		s, closed, changed := w.sess, w.closed, w.sessChanged
		w.mu.Unlock()
		if s != nil {
			return s, nil
		}
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for connection: %w", ctx.Err())
		}
	}
}

// PublishTask publishes a task owned by the worker's app and waits for the broker's
// confirm. Inside a handler pass its context: the task inherits the job's TID (and
// trace context). Before Run has connected (or while reconnecting) it waits for the
// connection. After(d) delays it.
func (w *Worker) PublishTask(ctx context.Context, task string, body []byte, opts ...PublishOption) error {
	if err := ValidateTask(w.cfg.App, task); err != nil {
		return err
	}
	s, err := w.session(ctx)
	if err != nil {
		return fmt.Errorf("publish task %q: %w", task, err)
	}
	if err := s.pub.publishTask(ctx, task, body, opts); err != nil {
		return fmt.Errorf("publish task %q: %w", task, err)
	}
	return nil
}

// PublishEvent publishes an event to its fanout exchange and waits for the confirm.
// Inside a handler pass its context: the event inherits the job's TID.
func (w *Worker) PublishEvent(ctx context.Context, event string, body []byte, opts ...PublishOption) error {
	if err := ValidateEvent(event); err != nil {
		return err
	}
	s, err := w.session(ctx)
	if err != nil {
		return fmt.Errorf("publish event %q: %w", event, err)
	}
	if err := s.pub.publishEvent(ctx, event, body, opts); err != nil {
		return fmt.Errorf("publish event %q: %w", event, err)
	}
	return nil
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *Worker) breaker() *gobreaker.TwoStepCircuitBreaker[struct{}] { return w.cb.Load() }
