package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
	amqp "github.com/rabbitmq/amqp091-go"
)

// uniq returns a fresh app name so concurrent test runs never share a queue.
func uniq(t testing.TB) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger {
	if os.Getenv("WORKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// admin is a separate connection for inspecting and cleaning up the broker.
type admin struct {
	t    testing.TB
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newAdmin(t testing.TB) *admin {
	t.Helper()
	conn, err := amqp.Dial(brokertest.URL(t))
	if err != nil {
		t.Fatalf("connect to the test broker: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	a := &admin{t: t, conn: conn, ch: ch}
	t.Cleanup(func() { _ = conn.Close() })
	return a
}

// channel returns a live channel, reopening it after a failed passive declare.
func (a *admin) channel() *amqp.Channel {
	if a.ch.IsClosed() {
		ch, err := a.conn.Channel()
		if err != nil {
			a.t.Fatal(err)
		}
		a.ch = ch
	}
	return a.ch
}

// inspect returns the ready count and consumer count of a queue.
func (a *admin) inspect(queue string) (ready, consumers int, err error) {
	q, err := a.channel().QueueDeclarePassive(queue, true, false, false, false, nil)
	return q.Messages, q.Consumers, err
}

// deleteLater removes queues and exchanges when the test ends.
func (a *admin) deleteLater(queues []string, exchanges ...string) {
	a.t.Cleanup(func() {
		ch, err := a.conn.Channel()
		if err != nil {
			return
		}
		for _, q := range queues {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
		for _, x := range exchanges {
			_ = ch.ExchangeDelete(x, false, false)
		}
		_ = ch.Close()
	})
}

// queuesOf lists every queue a handler of queue declares under policy p.
func queuesOf(queue string, p RetryPolicy) []string {
	return append([]string{queue, DeadQueue(queue)}, RetryQueues(queue, p)...)
}

// get fetches up to n messages from queue, waiting for them until ctx ends.
func (a *admin) get(ctx context.Context, queue string, n int) []amqp.Delivery {
	a.t.Helper()
	var out []amqp.Delivery
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(out) < n {
		d, ok, err := a.channel().Get(queue, true)
		if err != nil {
			a.t.Fatalf("get from %q: %v", queue, err)
		}
		if ok {
			out = append(out, d)
			continue
		}
		select {
		case <-ctx.Done():
			a.t.Fatalf("got %d of %d messages from %q: %v", len(out), n, queue, ctx.Err())
		case <-tick.C:
		}
	}
	return out
}

// eventually polls cond (a broker-side condition nothing signals) until ctx ends.
func eventually(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func recv[T any](t testing.TB, ctx context.Context, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-ctx.Done():
		t.Fatalf("timed out waiting to receive: %v", ctx.Err())
	}
	var zero T
	return zero
}

func baseConfig(t testing.TB, app string) Config {
	return Config{
		URL:             brokertest.URL(t),
		App:             app,
		Prefetch:        10,
		Concurrency:     2,
		Retry:           RetryPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
		ShutdownTimeout: 2 * time.Second,
		Logger:          quietLogger(),
	}
}

// running starts w.Run, waits for Ready and stops it when the test ends.
type running struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, w *Worker) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	select {
	case <-w.Ready():
	case err := <-r.done:
		r.done <- err
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready after 10s")
	}
	return r
}

func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return 15s after cancel")
	}
	return nil
}

func newPublisher(t testing.TB, app string) *Publisher {
	t.Helper()
	p, err := NewPublisher(PublisherConfig{URL: brokertest.URL(t), App: app, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// killSwitch dials through a net.Conn the test can close abruptly, like a crash or a
// network failure would.
type killSwitch struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (k *killSwitch) dial(url string) (*amqp.Connection, error) {
	return amqp.DialConfig(url, amqp.Config{
		Heartbeat: 10 * time.Second,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := net.DialTimeout(network, addr, 5*time.Second)
			if err == nil {
				k.mu.Lock()
				k.conns = append(k.conns, c)
				k.mu.Unlock()
			}
			return c, err
		},
	})
}

func (k *killSwitch) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		_ = c.Close()
	}
	k.conns = nil
}

var errBoom = errors.New("boom")

// matchHandler is a slog.Handler that signals c for every warning or error whose
// message contains substr.
type matchHandler struct {
	substr string
	c      chan<- struct{}
}

func (h matchHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h matchHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		select {
		case h.c <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h matchHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h matchHandler) WithGroup(string) slog.Handler      { return h }
