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
// once the record is written, on whichever goroutine wrote it.
type Client struct {
	conn net.Conn

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
	c := &Client{conn: conn}
	c.cond = sync.NewCond(&c.mu)
	b, err := appendJSON(nil, frameHello, hello)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.write(b); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
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
		c.buf, c.then = c.buf[:0], nil
		c.mu.Unlock()
		for _, f := range then {
			f(err)
		}
		c.mu.Lock()
	}
	c.flushing = false
}

// OutcomeThen queues a job's final outcome for the next write and returns
// at once; then runs with nil once the record is on the socket (the caller
// acks the job there, so an acked job is never counted lost), or with the
// write's error. then runs on the goroutine that writes, which may be the
// caller's own before OutcomeThen returns; it must not call the Client.
// While a write is under way, every record queued meanwhile goes out in the
// next one: one syscall for many jobs, without holding any caller up.
func (c *Client) OutcomeThen(o Outcome, then func(error)) {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		then(err)
		return
	}
	c.buf = AppendOutcome(c.buf, o)
	c.then = append(c.then, then)
	if !c.flushing {
		c.flush()
	}
	c.mu.Unlock()
}

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

// Close says goodbye and closes the connection.
func (c *Client) Close() error {
	err := c.write([]byte{frameBye, 0})
	if cerr := c.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
