package perf

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Calibration is the raw capacity of a broker on a machine: how fast the
// plainest amqp091-go publisher and consumer move messages through it.
type Calibration struct {
	Queue       string // the queue it created and deleted
	Messages    int64
	Size        int
	PublishPerS float64
	ConsumePerS float64
	Elapsed     time.Duration
}

// calibrationPrefetch keeps the raw consumer from waiting on the network
// without holding the whole queue.
const calibrationPrefetch = 100

// Calibrate measures it with the raw loops of the perf tool: n persistent
// messages of size bytes published with pipelined confirms into a fresh
// durable queue, then consumed with manual acks by one consumer, in this
// process. The queue is deleted afterwards. With a few thousand messages it
// takes about a second; the runner records it beside each variant so that
// results from different machines can be compared.
func Calibrate(ctx context.Context, url string, n int64, size int) (Calibration, error) {
	c := Calibration{Messages: n, Size: size}
	if n < 2 || size < 0 {
		return c, fmt.Errorf("calibrate: %d messages of %d bytes: want at least 2 messages", n, size)
	}
	start := time.Now()
	a, err := dialAdmin(url)
	if err != nil {
		return c, fmt.Errorf("calibrate: %w", err)
	}
	defer a.close()
	q := queueName()
	c.Queue = q
	if err := a.declare(q); err != nil {
		return c, fmt.Errorf("calibrate: %w", err)
	}
	run := func() error {
		msg := jobMessage(size)
		st, err := publishRaw(ctx, url, q, n, defaultWindow, func(int64) amqp.Publishing { return msg })
		if err != nil {
			return err
		}
		c.PublishPerS = st.rate()
		t := newTally(n)
		if err := consumeRaw(ctx, url, childArgs{queue: q, prefetch: calibrationPrefetch, concurrency: 1, count: n}, t); err != nil {
			return err
		}
		if d := time.Duration(t.last.Load() - t.first.Load()); d > 0 {
			c.ConsumePerS = float64(n-1) / d.Seconds()
		}
		if c.PublishPerS <= 0 || c.ConsumePerS <= 0 {
			return errors.New("no time elapsed between the first and the last message")
		}
		return nil
	}
	err = run()
	if rerr := a.remove(q); rerr != nil && err == nil {
		err = rerr
	}
	c.Elapsed = time.Since(start)
	if err != nil {
		return c, fmt.Errorf("calibrate: %w", err)
	}
	return c, nil
}
