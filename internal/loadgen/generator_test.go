package loadgen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/worker"
)

// testBroker is a management connection for declaring and inspecting queues.
type testBroker struct {
	url  string
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newTestBroker(tb testing.TB) *testBroker {
	tb.Helper()
	url := brokertest.URL(tb)
	conn, err := amqp.Dial(url)
	if err != nil {
		tb.Fatalf("connect to the test broker: %v", redact.Error(err, url))
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		tb.Fatalf("open channel: %v", err)
	}
	b := &testBroker{url: url, conn: conn, ch: ch}
	tb.Cleanup(func() { _ = conn.Close() })
	return b
}

// queue declares a durable queue with a unique name, deleted when the test ends.
func (b *testBroker) queue(tb testing.TB) string {
	tb.Helper()
	name := brokertest.Name(tb, "loadgen")
	if _, err := b.ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		tb.Fatalf("declare queue %q: %v", name, err)
	}
	tb.Cleanup(func() {
		if _, err := b.ch.QueueDelete(name, false, false, false); err != nil {
			tb.Errorf("delete queue %q: %v", name, err)
		}
	})
	return name
}

func (b *testBroker) depth(tb testing.TB, name string) int {
	tb.Helper()
	q, err := b.ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		tb.Fatalf("inspect queue %q: %v", name, err)
	}
	return q.Messages
}

// tracker checks the callbacks' contract: one OnPublished per job, then one
// OnConfirmed per published job.
type tracker struct {
	t         testing.TB
	mu        sync.Mutex
	published map[int64]bool
	answered  map[int64]bool
	acked     int
	onConfirm func(acked int)
}

func newTracker(t testing.TB) *tracker {
	return &tracker{t: t, published: map[int64]bool{}, answered: map[int64]bool{}}
}

func (tr *tracker) hook(cfg *Config) {
	cfg.OnPublished = func(seq int64) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.published[seq] {
			tr.t.Errorf("seq %d published twice", seq)
		}
		tr.published[seq] = true
	}
	cfg.OnConfirmed = func(seq int64, ack bool, _ time.Duration) {
		tr.mu.Lock()
		if !tr.published[seq] {
			tr.t.Errorf("seq %d answered before it was published", seq)
		}
		if tr.answered[seq] {
			tr.t.Errorf("seq %d answered twice", seq)
		}
		tr.answered[seq] = true
		if ack {
			tr.acked++
		}
		acked, fn := tr.acked, tr.onConfirm
		tr.mu.Unlock()
		if fn != nil {
			fn(acked)
		}
	}
}

// check asserts every job of the run is accounted for exactly once.
func (tr *tracker) check(res Result, wantPublished int64) {
	tr.t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if res.Published != wantPublished || int64(len(tr.published)) != wantPublished {
		tr.t.Errorf("published %d (callbacks %d), want %d", res.Published, len(tr.published), wantPublished)
	}
	if got := res.Confirmed + res.Nacked + res.Unconfirmed; got != res.Published || int64(len(tr.answered)) != res.Published {
		tr.t.Errorf("confirmed %d + nacked %d + unconfirmed %d = %d (callbacks %d), want published %d",
			res.Confirmed, res.Nacked, res.Unconfirmed, got, len(tr.answered), res.Published)
	}
	if int64(tr.acked) != res.Confirmed {
		tr.t.Errorf("%d ack callbacks, %d confirmed", tr.acked, res.Confirmed)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestSpikeIntoQueue(t *testing.T) {
	b := newTestBroker(t)
	q := b.queue(t)
	const jobs = 5000
	tr := newTracker(t)
	cfg := Config{URL: b.url, RoutingKey: q, RunID: brokertest.Name(t, "spike"), FirstSeq: 100, Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: jobs, Size: 100}}}
	tr.hook(&cfg)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	res, err := g.Run(ctx, start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	tr.check(res, jobs)
	if res.Confirmed != jobs || !res.Done || res.Unconfirmed != 0 || res.Reconnects != 0 {
		t.Fatalf("stats %+v", res.Stats)
	}
	if res.LateSends != 0 || res.LateMax != 0 {
		t.Errorf("a spike counted lateness: %d late, max %s", res.LateSends, res.LateMax)
	}
	if n := res.ConfirmLatency.TotalCount(); n != jobs {
		t.Errorf("confirm latency histogram holds %d values, want %d", n, jobs)
	}
	var perSec int64
	for _, n := range res.PublishedPerSecond {
		perSec += n
	}
	if perSec != jobs || res.FirstSend.Before(start) || res.LastSend.Before(res.FirstSend) {
		t.Errorf("per-second sends sum to %d; first %s last %s", perSec, res.FirstSend, res.LastSend)
	}
	if len(res.PhaseStarts) != 1 || res.PhaseStarts[0] != 0 {
		t.Errorf("phase starts %v", res.PhaseStarts)
	}
	if d := b.depth(t, q); d != jobs {
		t.Fatalf("queue holds %d messages, want %d", d, jobs)
	}
	for range 5 {
		d, ok, err := b.ch.Get(q, true)
		if err != nil || !ok {
			t.Fatalf("get: ok %v, %v", ok, err)
		}
		seq, _ := d.Headers[HeaderSeq].(int64)
		if seq < 100 || seq >= 100+jobs {
			t.Fatalf("seq header %v out of range", d.Headers[HeaderSeq])
		}
		tid := TID(cfg.RunID, seq)
		if d.Headers[worker.HeaderTID] != tid || d.MessageId != tid {
			t.Errorf("seq %d: TID header %v, message ID %q, want %s", seq, d.Headers[worker.HeaderTID], d.MessageId, tid)
		}
		if d.Headers[HeaderIntended] != start.UnixNano() {
			t.Errorf("seq %d: intended %v, want the spike's start %d", seq, d.Headers[HeaderIntended], start.UnixNano())
		}
		if d.Headers[worker.HeaderAttempt] != int32(1) {
			t.Errorf("seq %d: attempt header %#v", seq, d.Headers[worker.HeaderAttempt])
		}
		if fp, _ := d.Headers[worker.HeaderFirstPublished].(int64); fp < start.UnixMilli() || fp > time.Now().UnixMilli() {
			t.Errorf("seq %d: first-published %v outside the run", seq, d.Headers[worker.HeaderFirstPublished])
		}
		if d.DeliveryMode != amqp.Persistent || len(d.Body) != 100 {
			t.Errorf("seq %d: delivery mode %d, body %d bytes", seq, d.DeliveryMode, len(d.Body))
		}
	}
}

// TestLateSends drives lateness with a fake clock that moves 5 ms per publish,
// exactly the steady phase's spacing, so every job is sent on time until the
// clock jumps 300 ms after the eleventh steady job: then each later one is
// exactly 300 ms late. A jump during the spike before it must not count: spike
// jobs have no schedule to fall behind.
func TestLateSends(t *testing.T) {
	b := newTestBroker(t)
	q := b.queue(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	tr := newTracker(t)
	cfg := Config{URL: b.url, RoutingKey: q, RunID: "late", Clock: clock, LateThreshold: 50 * time.Millisecond, Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: 20}, {Kind: KindSteady, Rate: 200, For: 250 * time.Millisecond}}}
	tr.hook(&cfg)
	inner := cfg.OnPublished
	cfg.OnPublished = func(seq int64) {
		inner(seq)
		now.Add(int64(5 * time.Millisecond))
		switch seq {
		case 5:
			now.Add(int64(time.Second))
		case 20 + 10:
			now.Add(int64(300 * time.Millisecond))
		}
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := g.Run(ctx, clock())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	tr.check(res, 70)
	if res.LateSends != 39 {
		t.Errorf("late sends %d, want the 39 steady jobs after the jump", res.LateSends)
	}
	if res.LateMax != 300*time.Millisecond {
		t.Errorf("worst lateness %s, want 300ms (and not the spike's 1s)", res.LateMax)
	}
	// The distribution: 11 steady sends on time (recorded as 1 µs), 39 at 300 ms.
	if l := res.Lateness; l.TotalCount() != 50 || l.ValueAtQuantile(20) != 1 || !l.ValuesAreEquivalent(l.ValueAtQuantile(50), 300_000) {
		t.Errorf("lateness: %d sends, p20 %d µs, p50 %d µs; want 50, 1 µs, 300 ms", l.TotalCount(), l.ValueAtQuantile(20), l.ValueAtQuantile(50))
	}
	if len(res.PhaseStarts) != 2 || res.PhaseStarts[1] < time.Second {
		t.Errorf("phase starts %v: the steady phase starts when the spike's sends ended", res.PhaseStarts)
	}
	if d := b.depth(t, q); d != 70 {
		t.Errorf("queue holds %d, want 70", d)
	}
}

// forwarder is a TCP proxy whose connections the test can cut.
type forwarder struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newForwarder(t *testing.T, to string) *forwarder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, to: to}
	f.wg.Go(f.accept)
	t.Cleanup(f.close)
	return f
}

func (f *forwarder) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.to)
		if err != nil {
			_ = c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		f.wg.Go(func() { pipe(up, c) })
		f.wg.Go(func() { pipe(c, up) })
	}
}

// cut closes every connection through the forwarder.
func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
}

func (f *forwarder) close() {
	_ = f.ln.Close()
	f.cut()
	f.wg.Wait()
}

func forwardedURL(t *testing.T, brokerURL string, f *forwarder) string {
	u, err := amqp.ParseURI(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	addr := f.ln.Addr().(*net.TCPAddr)
	u.Host, u.Port = addr.IP.String(), addr.Port
	return u.String()
}

func TestReconnectAccountsForEveryJob(t *testing.T) {
	b := newTestBroker(t)
	q := b.queue(t)
	u, err := amqp.ParseURI(b.url)
	if err != nil {
		t.Fatal(err)
	}
	f := newForwarder(t, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)))
	tr := newTracker(t)
	cut := make(chan struct{})
	var once sync.Once
	tr.onConfirm = func(acked int) {
		if acked == 300 {
			once.Do(func() { close(cut) })
		}
	}
	cfg := Config{URL: forwardedURL(t, b.url, f), RoutingKey: q, RunID: "cut", Window: 64, Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSteady, Rate: 1000, For: 1500 * time.Millisecond, Size: 64}}}
	tr.hook(&cfg)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	start := time.Now()
	go func() {
		res, err := g.Run(ctx, start)
		done <- out{res, err}
	}()
	select {
	case <-cut:
		f.cut()
	case <-ctx.Done():
		t.Fatal("300 confirms never arrived")
	}
	o := <-done
	if o.err != nil {
		t.Fatalf("Run: %v", o.err)
	}
	if took := time.Since(start); took < 1499*time.Millisecond {
		t.Errorf("a 1.5 s schedule ran in %s", took)
	}
	res := o.res
	tr.check(res, 1500)
	if res.Reconnects < 1 || !res.Done {
		t.Fatalf("after the cut: %+v", res.Stats)
	}
	if d := int64(b.depth(t, q)); d < res.Confirmed || d > res.Published {
		t.Errorf("queue holds %d; confirmed %d, published %d", d, res.Confirmed, res.Published)
	}
	t.Logf("after a cut: %+v", res.Stats)
}

func TestCancelAccountsForEveryJob(t *testing.T) {
	b := newTestBroker(t)
	q := b.queue(t)
	tr := newTracker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tr.onConfirm = func(acked int) {
		if acked == 50 {
			cancel()
		}
	}
	cfg := Config{URL: b.url, RoutingKey: q, RunID: "cancel", Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSteady, Rate: 500, For: 20 * time.Second}}}
	tr.hook(&cfg)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Run(ctx, time.Now())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if res.Done || res.Published < 50 || res.Published >= 10000 {
		t.Fatalf("stats after cancel: %+v", res.Stats)
	}
	tr.check(res, res.Published)
	if _, err := g.Run(t.Context(), time.Now()); err == nil {
		t.Fatal("a second Run was accepted")
	}
}

func TestMissingExchangeFails(t *testing.T) {
	b := newTestBroker(t)
	tr := newTracker(t)
	cfg := Config{URL: b.url, Exchange: brokertest.Name(t, "loadgen-missing"), RunID: "missing", Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSteady, Rate: 100, For: 10 * time.Second}}}
	tr.hook(&cfg)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := g.Run(ctx, time.Now())
	if err == nil || !strings.Contains(err.Error(), "publish to exchange") || ctx.Err() != nil {
		t.Fatalf("Run returned %v (ctx %v)", err, ctx.Err())
	}
	tr.check(res, res.Published)
}

func TestConnectFailureHidesPassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	g, err := New(Config{URL: "amqp://user:s3cretpw@" + addr + "/", RoutingKey: "q", RunID: "r", Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := g.Run(ctx, time.Now())
	if err == nil || !strings.Contains(err.Error(), "connect load generator") || strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("Run returned %v", err)
	}
	if res.Published != 0 {
		t.Fatalf("published %d without a connection", res.Published)
	}
}

// TestNacksAndEvents publishes an event through a fanout exchange into a queue
// that rejects publishes past 10 messages: the broker nacks the rest, and each
// nack is accounted as one.
func TestNacksAndEvents(t *testing.T) {
	b := newTestBroker(t)
	ex := brokertest.Name(t, "loadgen-event")
	q := brokertest.Name(t, "loadgen-full")
	if err := b.ch.ExchangeDeclare(ex, amqp.ExchangeFanout, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.ch.ExchangeDelete(ex, false, false); err != nil {
			t.Errorf("delete exchange %q: %v", ex, err)
		}
	})
	if _, err := b.ch.QueueDeclare(q, false, true, false, false, amqp.Table{"x-max-length": int32(10), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := b.ch.QueueDelete(q, false, false, false); err != nil {
			t.Errorf("delete queue %q: %v", q, err)
		}
	})
	if err := b.ch.QueueBind(q, "", ex, false, nil); err != nil {
		t.Fatal(err)
	}
	tr := newTracker(t)
	cfg := Config{URL: b.url, Exchange: ex, RunID: "nack", Window: 8, Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: 50, Size: 10}}}
	tr.hook(&cfg)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := g.Run(ctx, time.Now())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	tr.check(res, 50)
	if res.Confirmed != 10 || res.Nacked != 40 || !res.Done {
		t.Fatalf("stats %+v, want 10 confirmed and 40 nacked", res.Stats)
	}
	if d := b.depth(t, q); d != 10 {
		t.Fatalf("queue holds %d, want 10", d)
	}
}

// Config.Message gives each job the body and headers of the worker under
// test (job.body, job.tid); an error from it ends the run.
func TestMessageHookShapesEachJob(t *testing.T) {
	b := newTestBroker(t)
	q := b.queue(t)
	const jobs = 20
	cfg := Config{URL: b.url, RoutingKey: q, RunID: brokertest.Name(t, "message"), Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: jobs, Size: 100}},
		Message: func(j JobInfo, msg *amqp.Publishing) error {
			msg.Body = []byte(`{"tid":"` + j.TID + `","seq":` + strconv.FormatInt(j.Seq, 10) + `}`)
			msg.ContentType = "application/json"
			msg.Headers["x-job-id"] = j.TID
			return nil
		}}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Run(t.Context(), time.Now()); err != nil {
		t.Fatal(err)
	}
	for range jobs {
		d, ok, err := b.ch.Get(q, true)
		if err != nil || !ok {
			t.Fatalf("get: ok %v, %v", ok, err)
		}
		seq, _ := d.Headers[HeaderSeq].(int64)
		tid, _ := JSONField(d.Body, "tid")
		if tid != TID(cfg.RunID, seq) || d.Headers["x-job-id"] != tid || d.ContentType != "application/json" {
			t.Fatalf("job %d: body %s, headers %v, content type %q", seq, d.Body, d.Headers, d.ContentType)
		}
	}

	cfg.Message = func(j JobInfo, msg *amqp.Publishing) error {
		if j.Seq == 3 {
			return errors.New("no body for 3")
		}
		return nil
	}
	g, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Run(t.Context(), time.Now())
	if err == nil || !strings.Contains(err.Error(), "build job 3: no body for 3") || res.Published != 3 || res.Confirmed != 3 || res.Done {
		t.Fatalf("Run = %v with %d published; want the hook's error after 3 jobs", err, res.Published)
	}
}
