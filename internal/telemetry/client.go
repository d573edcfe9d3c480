package telemetry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Client is a worker's side of the telemetry connection. Outcome blocks until
// the record is in the kernel's socket buffer, so a job acked after Outcome
// returned is reported even if the process is SIGKILLed right after the ack.
// Concurrent callers share writes (group commit): one syscall per batch.
// OutcomeThen does not wait at all: the caller's next step (the ack) runs
// once the record is written, by the client's flusher, which gathers the
// records of OutcomeLinger into one write.
type Client struct {
	conn net.Conn

	wake        chan struct{} // OutcomeThen queued a record while none was queued
	stopFlusher chan struct{}
	stopOnce    sync.Once
	flusherDone chan struct{}
	doneAt      []int // offsets in buf of the Done fields of OutcomeThen's records

	mu        sync.Mutex
	cond      *sync.Cond
	buf       []byte
	spare     []byte
	then      []func(error) // to run once buf is written
	spareThen []func(error)
	flushing  bool
	batch     uint64 // id of the batch buf belongs to
	written   uint64 // batches [0, written) are on the socket
	err       error
}

// Dial connects to the runner at addr and introduces the worker.
func Dial(ctx context.Context, addr string, hello Hello) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial telemetry %s: %w", addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := newClient(conn)
	b, err := appendJSON(nil, frameHello, hello)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.write(b); err != nil {
		c.stop()
		conn.Close()
		return nil, err
	}
	return c, nil
}

// OutcomeLinger is how long the flusher lets OutcomeThen's records gather
// before it writes them: at a few thousand jobs a second a write carries
// several records instead of one. Jobs are acked that much later; their
// measured latency ends when their record is written, right before the ack.
const OutcomeLinger = time.Millisecond

func newClient(conn net.Conn) *Client {
	c := &Client{conn: conn, wake: make(chan struct{}, 1), stopFlusher: make(chan struct{}), flusherDone: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.flusher()
	return c
}

// flusher writes OutcomeThen's records: OutcomeLinger after the first of a
// batch was queued, or at once when the client stops.
func (c *Client) flusher() {
	defer close(c.flusherDone)
	linger := time.NewTimer(OutcomeLinger)
	linger.Stop()
	for {
		select {
		case <-c.wake:
		case <-c.stopFlusher:
			c.flushQueued()
			return
		}
		linger.Reset(OutcomeLinger)
		select {
		case <-linger.C:
		case <-c.stopFlusher:
			linger.Stop()
			c.flushQueued()
			return
		}
		c.flushQueued()
	}
}

// flushQueued writes what is queued unless a writer is at it already (it
// writes until nothing is left).
func (c *Client) flushQueued() {
	c.mu.Lock()
	if !c.flushing {
		c.flush()
	}
	c.mu.Unlock()
}

// stop ends the flusher after it wrote what was queued; once.
func (c *Client) stop() {
	c.stopOnce.Do(func() { close(c.stopFlusher) })
	<-c.flusherDone
}

// write appends one or more frames and waits until they are written.
func (c *Client) write(frames []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.buf = append(c.buf, frames...)
	mine := c.batch
	if c.flushing {
		for c.written <= mine && c.err == nil {
			c.cond.Wait()
		}
		if c.written > mine {
			return nil
		}
		return c.err
	}
	c.flush()
	if c.written > mine {
		return nil
	}
	return c.err
}

// flush writes batches until none is left, running each batch's then
// functions after its write, unlocked. Called with c.mu held.
func (c *Client) flush() {
	c.flushing = true
	for len(c.buf) > 0 && c.err == nil {
		// The jobs' measured time ends here: right before their records are
		// written and they are acked.
		now := uint64(time.Now().UnixNano())
		for _, off := range c.doneAt {
			binary.LittleEndian.PutUint64(c.buf[off:], now)
		}
		c.doneAt = c.doneAt[:0]
		out, then := c.buf, c.then
		c.buf, c.then = c.spare[:0], c.spareThen[:0]
		c.batch++
		c.mu.Unlock()
		_, err := c.conn.Write(out)
		if err != nil {
			err = fmt.Errorf("write telemetry: %w", err)
		}
		for _, f := range then {
			f(err)
		}
		clear(then)
		c.mu.Lock()
		c.spare, c.spareThen = out, then
		c.written = c.batch
		if err != nil {
			c.err = err
		}
		c.cond.Broadcast()
	}
	if c.err != nil {
		// Nothing more is written: fail whatever is still queued.
		then, err := c.then, c.err
		c.buf, c.then, c.doneAt = c.buf[:0], nil, c.doneAt[:0]
		c.mu.Unlock()
		for _, f := range then {
			f(err)
		}
		c.mu.Lock()
	}
	c.flushing = false
}

// OutcomeThen queues a job's final outcome and returns at once; then runs
// with nil once the record is on the socket (the caller acks the job there,
// so an acked job is never counted lost), or with the write's error (or
// ErrClosed after Close). o.Done is set when the record is written. then
// runs on the goroutine that writes (the flusher, or a caller of the other
// methods); it must not call the Client. The records queued within
// OutcomeLinger go out in one write: one syscall for many jobs, without
// holding any caller up.
func (c *Client) OutcomeThen(o Outcome, then func(error)) {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		then(err)
		return
	}
	first := len(c.then) == 0
	c.doneAt = append(c.doneAt, len(c.buf)+outcomeDoneOffset)
	c.buf = AppendOutcome(c.buf, o)
	c.then = append(c.then, then)
	c.mu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default: // the flusher is woken already
		}
	}
}

// ErrClosed is OutcomeThen's error after Close.
var ErrClosed = errors.New("telemetry client closed")

// Outcome reports a job's final outcome and returns once it is on the socket.
func (c *Client) Outcome(o Outcome) error {
	var b [2 + outcomeSize]byte
	return c.write(AppendOutcome(b[:0], o))
}

// Redelivered reports a delivery the broker flagged as redelivered.
func (c *Client) Redelivered(seq int64) error {
	var b [10]byte
	p := append(b[:0], frameRedelivered, 8)
	p = binary.LittleEndian.AppendUint64(p, uint64(seq))
	return c.write(p)
}

// Ready reports that the worker's topology is declared and it consumes.
func (c *Client) Ready() error { return c.write([]byte{frameReady, 0}) }

// Stats reports a stats snapshot.
func (c *Client) Stats(s Stats) error {
	if s.At == 0 {
		s.At = time.Now().UnixNano()
	}
	b, err := appendJSON(nil, frameStats, s)
	if err != nil {
		return err
	}
	return c.write(b)
}

// Close writes what is queued, says goodbye and closes the connection.
func (c *Client) Close() error {
	err := c.write([]byte{frameBye, 0})
	c.stop()
	c.mu.Lock()
	if c.err == nil {
		c.err = ErrClosed
	}
	c.mu.Unlock()
	if cerr := c.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
