package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/worker"
)

const (
	reconnectMin   = 100 * time.Millisecond
	reconnectMax   = 2 * time.Second
	dialTimeout    = 10 * time.Second
	closeTimeout   = 5 * time.Second
	latencyMaxUS   = 3_600_000_000 // 1 h in µs
	blockedSignals = 4
)

// slot remembers one in-flight publish. Slots are indexed by delivery tag, which
// the broker assigns sequentially per channel, so no map is needed. The fields
// are atomics because the confirm arrives over the network, which the race
// detector cannot see as synchronisation.
type slot struct {
	seq  atomic.Int64
	sent atomic.Int64 // clock, Unix ns
}

// session is one connection and its confirm-mode channel.
type session struct {
	conn     *amqp.Connection
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
	blocks   chan amqp.Blocking
	returns  chan amqp.Return
	chClosed chan *amqp.Error
	tags     uint64        // delivery tags used; publisher goroutine only
	acked    atomic.Uint64 // last answered tag; written by the listener
	done     chan struct{} // closed when the listener exits: the channel is dead
}

// run is the state of one Generator.Run. The publisher (Run's goroutine) owns
// everything but the histogram, which the current session's listener owns until
// it exits; sessions follow each other, so there is never more than one.
type run struct {
	g         *Generator
	cfg       *Config
	start     time.Time
	sem       chan struct{} // one token per unconfirmed publish
	ring      []slot
	unblocked chan struct{}
	timer     *time.Timer
	wg        sync.WaitGroup
	sess      *session
	urlIdx    int // the URL last connected to, in urls(); publisher goroutine only

	hist   *hdrhistogram.Histogram
	late   *hdrhistogram.Histogram // lateness of timed sends, µs
	msg    amqp.Publishing
	bodies map[int][]byte
	tid    [36]byte

	firstSend, lastSend time.Time
	perSecond           []int64
	phaseStarts         []time.Duration
}

func newRun(g *Generator, start time.Time) *run {
	r := &run{
		g:         g,
		cfg:       &g.cfg,
		start:     start,
		sem:       make(chan struct{}, g.cfg.Window),
		ring:      make([]slot, g.cfg.Window),
		unblocked: make(chan struct{}, 1),
		timer:     time.NewTimer(time.Hour),
		hist:      hdrhistogram.New(1, latencyMaxUS, 3),
		late:      hdrhistogram.New(1, latencyMaxUS, 3),
		bodies:    map[int][]byte{},
	}
	r.timer.Stop()
	// One headers table for every message: Publish serialises it before it
	// returns, so only the values change.
	r.msg = amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		Headers: amqp.Table{
			worker.HeaderTID:            "",
			worker.HeaderAttempt:        int32(1),
			worker.HeaderFirstPublished: int64(0),
			HeaderSeq:                   int64(0),
			HeaderIntended:              int64(0),
		},
	}
	return r
}

func (r *run) clock() time.Time { return r.cfg.Clock() }

func (r *run) run(ctx context.Context) error {
	defer r.wg.Wait()
	defer r.timer.Stop()
	s, err := r.connect(ctx)
	if err != nil {
		return fmt.Errorf("connect load generator: %w", err)
	}
	r.sess = s

	sched := NewSchedule(r.cfg.Phases)
	phase := -1
	var phaseStart time.Time
	for {
		job, ok := sched.Next()
		if !ok {
			break
		}
		for phase < job.Phase {
			switch {
			case phase < 0:
				phaseStart = r.start
			case r.cfg.Phases[phase].Kind == KindSpike:
				phaseStart = r.clock() // a spike ends when its last job went out
			default:
				phaseStart = phaseStart.Add(r.cfg.Phases[phase].Duration())
			}
			phase++
			r.phaseStarts = append(r.phaseStarts, phaseStart.Sub(r.start))
			r.g.phaseStart.Store(int64(phaseStart.Sub(r.start)))
			r.g.phase.Store(int32(phase + 1))
		}
		if err := r.send(ctx, job, phaseStart.Add(job.Offset)); err != nil {
			var be *buildError
			if errors.As(err, &be) {
				// What was sent is answered and the connection closed before
				// the run ends on the job that could not be built.
				return errors.Join(err, r.drain(ctx))
			}
			return err
		}
	}
	if err := r.drain(ctx); err != nil {
		return err
	}
	r.g.done.Store(true)
	return nil
}

// send publishes one job, reconnecting first if need be.
func (r *run) send(ctx context.Context, job Job, intended time.Time) error {
	seq := r.cfg.FirstSeq + job.Index
	announced := false
	giveUp := func(err error) error {
		if announced { // announced, never sent: account for it anyway
			r.unconfirm(seq, 0)
		}
		return err
	}
	for {
		if r.sess == nil {
			if err := r.reconnect(ctx); err != nil {
				return giveUp(err)
			}
		}
		s := r.sess
		// Spike jobs are due at once, unless Run was given a start in the future.
		if d := intended.Sub(r.clock()); d > 0 {
			r.timer.Reset(d)
			select {
			case <-r.timer.C:
			case <-s.done:
				r.timer.Stop()
				if err := r.lost(s); err != nil {
					return giveUp(err)
				}
				continue
			case <-ctx.Done():
				r.timer.Stop()
				return giveUp(r.abort(ctx))
			}
		}
		select {
		case r.sem <- struct{}{}:
		case <-s.done:
			if err := r.lost(s); err != nil {
				return giveUp(err)
			}
			continue
		case <-ctx.Done():
			return giveUp(r.abort(ctx))
		}
		if err := r.waitUnblocked(ctx, s); err != nil {
			<-r.sem
			if ctx.Err() != nil {
				return giveUp(r.abort(ctx))
			}
			if err := r.lost(s); err != nil {
				return giveUp(err)
			}
			continue
		}

		now := r.clock()
		tag := s.tags + 1
		sl := &r.ring[(tag-1)%uint64(len(r.ring))]
		sl.seq.Store(seq)
		sl.sent.Store(now.UnixNano())
		if err := r.fill(job, seq, intended, now); err != nil {
			<-r.sem
			return giveUp(&buildError{err})
		}
		if !announced {
			announced = true
			r.g.published.Add(1)
			if r.cfg.OnPublished != nil {
				r.cfg.OnPublished(seq)
			}
		}
		// Mandatory: a job its queue never got (the queue was deleted) comes
		// back, and is not counted as accepted by the broker.
		err := s.ch.Publish(r.cfg.Exchange, r.cfg.RoutingKey, true, false, r.msg)
		if err == nil {
			s.tags = tag
			r.record(job, intended, now)
			return nil
		}
		<-r.sem
		if errors.Is(err, amqp.ErrClosed) {
			// Nothing was sent: the job goes out on the next connection.
			select {
			case <-s.done:
			case <-ctx.Done():
				return giveUp(r.abort(ctx))
			}
			if err := r.lost(s); err != nil {
				return giveUp(err)
			}
			continue
		}
		// Part of it may have reached the broker; republishing could duplicate it.
		r.unconfirm(seq, 0)
		r.record(job, intended, now)
		return nil
	}
}

// buildError is Config.Message's failure to build a job.
type buildError struct{ err error }

func (e *buildError) Error() string { return e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// waitUnblocked holds publishing while the broker blocks the connection.
func (r *run) waitUnblocked(ctx context.Context, s *session) error {
	for r.g.blocked.Load() {
		select {
		case <-r.unblocked:
		case <-s.done:
			return errors.New("connection closed while blocked")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// fill sets the reusable message up for job seq.
func (r *run) fill(job Job, seq int64, intended, now time.Time) error {
	formatTID(&r.tid, r.g.hash, seq)
	tid := string(r.tid[:])
	h := r.msg.Headers
	h[worker.HeaderTID] = tid
	h[worker.HeaderFirstPublished] = now.UnixMilli()
	h[HeaderSeq] = seq
	h[HeaderIntended] = intended.UnixNano()
	r.msg.MessageId = tid
	r.msg.Timestamp = now
	body, ok := r.bodies[job.Size]
	if !ok {
		body = make([]byte, job.Size)
		for i := range body {
			body[i] = 'x'
		}
		r.bodies[job.Size] = body
	}
	r.msg.Body = body
	if r.cfg.Message != nil {
		if err := r.cfg.Message(JobInfo{Seq: seq, TID: tid, Intended: intended}, &r.msg); err != nil {
			return fmt.Errorf("build job %d: %w", seq, err)
		}
	}
	return nil
}

// record accounts for a send: when, and how late.
func (r *run) record(job Job, intended, now time.Time) {
	if r.firstSend.IsZero() {
		r.firstSend = now
	}
	r.lastSend = now
	if sec := now.Sub(r.start) / time.Second; sec >= 0 {
		for int64(len(r.perSecond)) <= int64(sec) {
			r.perSecond = append(r.perSecond, 0)
		}
		r.perSecond[sec]++
	}
	if job.Spike {
		return
	}
	late := now.Sub(intended)
	_ = r.late.RecordValue(min(max(late.Microseconds(), 1), latencyMaxUS)) // clamped into range: cannot fail
	if late > time.Duration(r.g.lateMax.Load()) {
		r.g.lateMax.Store(int64(late))
	}
	if late > r.cfg.LateThreshold {
		r.g.late.Add(1)
	}
}

// answer records the broker's answer (or its absence) to a publish.
func (r *run) answer(seq int64, ack bool, latency time.Duration) {
	if r.cfg.OnConfirmed != nil {
		r.cfg.OnConfirmed(seq, ack, latency)
	}
}

// unconfirm gives up on a publish the broker never answered.
func (r *run) unconfirm(seq int64, since time.Duration) {
	r.g.unconfirmed.Add(1)
	r.answer(seq, false, since)
}

// drain waits for the answers to every publish in flight, then closes.
func (r *run) drain(ctx context.Context) error {
	held := 0
	defer func() {
		for ; held > 0; held-- {
			<-r.sem
		}
	}()
	for held < cap(r.sem) && r.sess != nil {
		select {
		case r.sem <- struct{}{}:
			held++
		case <-r.sess.done:
			if err := r.lost(r.sess); err != nil {
				return err
			}
		case <-ctx.Done():
			return r.abort(ctx)
		}
	}
	if s := r.sess; s != nil {
		r.sess = nil
		_ = s.conn.CloseDeadline(time.Now().Add(closeTimeout)) // everything is answered; a failed close loses nothing
		<-s.done
		r.settle(s)
	}
	return nil
}

// abort ends the run because ctx ended: the listener closes the connection, and
// whatever was in flight is unconfirmed.
func (r *run) abort(ctx context.Context) error {
	if s := r.sess; s != nil {
		r.sess = nil
		<-s.done
		r.settle(s)
	}
	return ctx.Err()
}

// lost handles a dead session: its in-flight publishes become unconfirmed. It
// returns an error only if reconnecting cannot help.
func (r *run) lost(s *session) error {
	r.sess = nil
	n := r.settle(s)
	var reason *amqp.Error
	select {
	case reason = <-s.chClosed:
	default:
	}
	r.cfg.Logger.Warn("load generator lost its connection", "unconfirmed", n, "err", reason)
	if reason != nil && reason.Code == amqp.NotFound {
		return fmt.Errorf("publish to exchange %q: %w", r.cfg.Exchange, reason)
	}
	return nil
}

// settle gives up on the publishes of a session whose listener has exited, and
// closes the session. It returns how many it gave up on.
func (r *run) settle(s *session) int {
	now := r.clock().UnixNano()
	var n int
	for tag := s.acked.Load() + 1; tag <= s.tags; tag++ {
		sl := &r.ring[(tag-1)%uint64(len(r.ring))]
		r.unconfirm(sl.seq.Load(), time.Duration(now-sl.sent.Load()))
		<-r.sem
		n++
	}
	s.tags = s.acked.Load()
	if !s.conn.IsClosed() {
		_ = s.conn.CloseDeadline(time.Now().Add(closeTimeout)) // already given up on; nothing to lose
	}
	if r.g.blocked.Load() {
		r.setBlocked(false)
	}
	return n
}

// reconnect dials until it succeeds or ctx ends, backing off from 100 ms to 2 s
// with jitter.
func (r *run) reconnect(ctx context.Context) error {
	backoff := reconnectMin
	down := r.clock()
	for attempt := 1; ; attempt++ {
		s, err := r.connect(ctx)
		if err == nil {
			r.sess = s
			r.g.reconnects.Add(1)
			r.cfg.Logger.Info("load generator reconnected", "attempts", attempt, "after", r.clock().Sub(down))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.cfg.Logger.Warn("load generator reconnect failed", "attempt", attempt, "err", err)
		r.timer.Reset(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-r.timer.C:
		case <-ctx.Done():
			r.timer.Stop()
			return ctx.Err()
		}
		backoff = min(2*backoff, reconnectMax)
	}
}

// connect opens a session and starts its listener.
func (r *run) connect(ctx context.Context) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := r.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dial broker: %w", uriError(err))
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close() // the session never existed
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = conn.Close() // the session never existed
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	s := &session{
		conn:     conn,
		ch:       ch,
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, len(r.ring))),
		blocks:   conn.NotifyBlocked(make(chan amqp.Blocking, blockedSignals)),
		returns:  ch.NotifyReturn(make(chan amqp.Return, len(r.ring))),
		chClosed: ch.NotifyClose(make(chan *amqp.Error, 1)),
		done:     make(chan struct{}),
	}
	r.wg.Go(func() {
		defer close(s.done)
		r.listen(ctx, s)
	})
	return s, nil
}

// dial connects to the URL last connected to, or else the next one that
// answers.
func (r *run) dial(ctx context.Context) (*amqp.Connection, error) {
	urls := append([]string{r.cfg.URL}, r.cfg.URLs...)
	var errs []error
	for k := range urls {
		i := (r.urlIdx + k) % len(urls)
		conn, err := r.dialURL(ctx, urls[i])
		if err == nil {
			r.urlIdx = i
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (r *run) dialURL(ctx context.Context, url string) (*amqp.Connection, error) {
	if r.cfg.Dial != nil {
		return r.cfg.Dial(url)
	}
	return amqp.DialConfig(url, amqp.Config{
		Properties: amqp.Table{"connection_name": "bench load generator"},
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds the handshake, which a partition would stall; the client
			// clears it once the connection is open.
			if err := c.SetDeadline(time.Now().Add(dialTimeout)); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		},
	})
}

// listen drains the session's confirms and blocked notifications until the
// channel closes; when ctx ends it closes the connection, which unblocks a
// publish stuck on a full socket.
func (r *run) listen(ctx context.Context, s *session) {
	ctxDone := ctx.Done()
	blocks, returns := s.blocks, s.returns
	size := uint64(len(r.ring))
	returned := map[int64]bool{} // seqs returned, until their confirm
	for {
		select {
		case ret, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			recordReturn(returned, ret)
		case c, ok := <-s.confirms:
			if !ok {
				return
			}
			// A return comes before its publish's confirm: read those
			// waiting, so that a returned publish is never counted acked.
			for drained := false; !drained && returns != nil; {
				select {
				case ret, ok := <-returns:
					if !ok {
						returns = nil
						continue
					}
					recordReturn(returned, ret)
				default:
					drained = true
				}
			}
			sl := &r.ring[(c.DeliveryTag-1)%size]
			seq := sl.seq.Load()
			lat := time.Duration(r.clock().UnixNano() - sl.sent.Load())
			if returned[seq] {
				delete(returned, seq)
				r.g.returned.Add(1)
				c.Ack = false
			}
			if c.Ack {
				r.g.confirmed.Add(1)
				_ = r.hist.RecordValue(min(max(lat.Microseconds(), 1), latencyMaxUS)) // clamped into range: cannot fail
			} else {
				r.g.nacked.Add(1)
			}
			s.acked.Store(c.DeliveryTag)
			r.answer(seq, c.Ack, lat)
			<-r.sem
		case b, ok := <-blocks:
			if !ok {
				blocks = nil
				continue
			}
			r.setBlocked(b.Active)
		case <-ctxDone:
			ctxDone = nil
			_ = s.conn.CloseDeadline(time.Now().Add(time.Second)) // the run is over; what is in flight is unconfirmed
		}
	}
}

// recordReturn notes the sequence number of a returned publish.
func recordReturn(returned map[int64]bool, ret amqp.Return) {
	if seq, ok := worker.HeaderInt(ret.Headers, HeaderSeq); ok {
		returned[seq] = true
	}
}

func (r *run) setBlocked(active bool) {
	if active == r.g.blocked.Load() {
		return
	}
	now := r.clock().UnixNano()
	if active {
		r.g.blockedSince.Store(now)
		r.g.blocked.Store(true)
		r.cfg.Logger.Warn("broker blocked the load generator's connection (resource alarm); publishing waits")
		return
	}
	r.g.blockedTotal.Add(now - r.g.blockedSince.Load())
	r.g.blocked.Store(false)
	select {
	case r.unblocked <- struct{}{}:
	default:
	}
}
