package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recorder struct {
	mu       sync.Mutex
	hellos   []Hello
	ready    []int
	outcomes map[int64]Outcome
	dups     int
	redeliv  []int64
	stats    []Stats
	bye      chan int
}

func newRecorder() *recorder {
	return &recorder{outcomes: map[int64]Outcome{}, bye: make(chan int, 16)}
}

// conn is one connection's view of the recorder.
type conn struct {
	r      *recorder
	worker int
}

func (r *recorder) accept(h Hello) Conn {
	r.mu.Lock()
	r.hellos = append(r.hellos, h)
	r.mu.Unlock()
	return &conn{r: r, worker: h.Worker}
}

func (c *conn) Ready() { c.r.mu.Lock(); c.r.ready = append(c.r.ready, c.worker); c.r.mu.Unlock() }
func (c *conn) Outcome(o Outcome) {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.outcomes[o.Seq]; ok {
		r.dups++
	}
	r.outcomes[o.Seq] = o
}
func (c *conn) Redelivered(seq int64) {
	r := c.r
	r.mu.Lock()
	r.redeliv = append(r.redeliv, seq)
	r.mu.Unlock()
}
func (c *conn) Stats(s Stats) { c.r.mu.Lock(); c.r.stats = append(c.r.stats, s); c.r.mu.Unlock() }
func (c *conn) Bye()          { c.r.bye <- c.worker }

func TestRoundTripOverTCP(t *testing.T) {
	rec := newRecorder()
	errs := make(chan error, 1)
	srv, err := Listen("127.0.0.1:0", rec.accept, func(err error) { errs <- err })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.Addr(), Hello{Worker: 3, PID: 42, Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(); err != nil {
		t.Fatal(err)
	}
	const n = 20_000
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for seq := int64(g); seq < n; seq += 8 {
				o := Outcome{Seq: seq, Kind: Succeeded, Attempt: int(seq%7) + 1, Intended: seq * 10, Done: seq*10 + 5, Processing: time.Duration(seq)}
				if seq%100 == 0 {
					o.Kind = Recovered
				}
				if err := c.Outcome(o); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Redelivered(77); err != nil {
		t.Fatal(err)
	}
	if err := c.Stats(Stats{RSSBytes: 1 << 20, BreakerState: "open", InFlight: 3}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-rec.bye:
		if w != 3 {
			t.Fatalf("bye from worker %d", w)
		}
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no bye")
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.outcomes) != n || rec.dups != 0 {
		t.Fatalf("got %d outcomes, %d dups; want %d", len(rec.outcomes), rec.dups, n)
	}
	for seq, o := range rec.outcomes {
		want := Outcome{Seq: seq, Kind: Succeeded, Attempt: int(seq%7) + 1, Intended: seq * 10, Done: seq*10 + 5, Processing: time.Duration(seq)}
		if seq%100 == 0 {
			want.Kind = Recovered
		}
		if o != want {
			t.Fatalf("outcome %d = %+v, want %+v", seq, o, want)
		}
	}
	if len(rec.hellos) != 1 || rec.hellos[0].PID != 42 || len(rec.ready) != 1 || rec.ready[0] != 3 {
		t.Fatalf("hello %+v ready %v", rec.hellos, rec.ready)
	}
	if len(rec.redeliv) != 1 || rec.redeliv[0] != 77 {
		t.Fatalf("redelivered %v", rec.redeliv)
	}
	if len(rec.stats) != 1 || rec.stats[0].Worker != 3 || rec.stats[0].BreakerState != "open" || rec.stats[0].At == 0 {
		t.Fatalf("stats %+v", rec.stats)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for name, in := range map[string][]byte{
		"no hello":      AppendOutcome(nil, Outcome{Seq: 1, Kind: Succeeded}),
		"unknown type":  append(hello(), 99, 0),
		"short outcome": append(hello(), frameOutcome, 3, 1, 2, 3),
		"bad kind":      AppendOutcome(hello(), Outcome{Seq: 1, Kind: 9}),
		"truncated":     AppendOutcome(hello(), Outcome{Seq: 1, Kind: Succeeded})[:14],
		"huge":          {frameStats, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad json":      appendFrame(hello(), frameStats, []byte("{")),
		"two hellos":    append(hello(), hello()...),
	} {
		t.Run(name, func(t *testing.T) {
			br := bufio.NewReader(bytes.NewReader(in))
			err := decode(br, br, newRecorder().accept)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "decode") && !strings.Contains(err.Error(), "read frame") {
				t.Fatalf("error %q does not say what failed", err)
			}
		})
	}
}

func hello() []byte {
	b, _ := appendJSON(nil, frameHello, Hello{Worker: 1})
	return b
}

func BenchmarkAppendOutcome(b *testing.B) {
	buf := make([]byte, 0, 64)
	o := Outcome{Seq: 123456, Kind: Succeeded, Attempt: 1, Intended: time.Now().UnixNano(), Done: time.Now().UnixNano(), Processing: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendOutcome(buf[:0], o)
	}
}

// seqConn is a net.Conn that records which outcomes each Write carried.
type seqConn struct {
	net.Conn
	mu      sync.Mutex
	written map[int64]bool
	writes  int
	fail    error
}

func (s *seqConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	s.writes++
	n := len(p)
	for len(p) > 0 {
		if p[0] != frameOutcome || len(p) < 2+outcomeSize {
			panic("seqConn: not an outcome frame")
		}
		o, err := decodeOutcome(p[2 : 2+outcomeSize])
		if err != nil {
			panic(err)
		}
		s.written[o.Seq] = true
		p = p[2+outcomeSize:]
	}
	return n, nil
}

func (s *seqConn) has(seq int64) bool { s.mu.Lock(); defer s.mu.Unlock(); return s.written[seq] }

// OutcomeThen runs each record's then once, after the write that carried it,
// and shares writes between concurrent callers.
func TestOutcomeThenRunsAfterTheWrite(t *testing.T) {
	sc := &seqConn{written: map[int64]bool{}}
	c := newClient(sc)
	const n = 20_000
	var ran, early atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for seq := int64(g); seq < n; seq += 8 {
				c.OutcomeThen(Outcome{Seq: seq, Kind: Succeeded, Attempt: 1}, func(err error) {
					if err != nil || !sc.has(seq) {
						early.Add(1)
					}
					ran.Add(1)
				})
			}
		})
	}
	wg.Wait()
	c.stop() // writes what is still queued
	if ran.Load() != n || early.Load() != 0 {
		t.Fatalf("then ran %d times (%d before its record was written or with an error), want %d", ran.Load(), early.Load(), n)
	}
	if len(sc.written) != n {
		t.Fatalf("%d records written, want %d", len(sc.written), n)
	}
	if sc.writes > n/10 {
		t.Errorf("%d records in %d writes: want them to share writes", n, sc.writes)
	}
	t.Logf("%d records in %d writes", n, sc.writes)
}

// A failed write fails its records' thens and every later one at once; Done
// is set when the record is written.
func TestOutcomeThenFailsAfterAFailedWrite(t *testing.T) {
	sc := &seqConn{written: map[int64]bool{}, fail: errors.New("broken pipe")}
	c := newClient(sc)
	defer c.stop()
	got := make(chan error, 2)
	c.OutcomeThen(Outcome{Seq: 1, Kind: Succeeded}, func(err error) { got <- err })
	if err := <-got; !errors.Is(err, sc.fail) {
		t.Fatalf("then after a failed write got %v, want %v", err, sc.fail)
	}
	c.OutcomeThen(Outcome{Seq: 2, Kind: Succeeded}, func(err error) { got <- err })
	select {
	case err := <-got:
		if !errors.Is(err, sc.fail) {
			t.Fatalf("then after the failure got %v", err)
		}
	default:
		t.Fatal("then after the failure did not run at once")
	}
}

func TestOutcomeThenSetsDoneAtTheWrite(t *testing.T) {
	rec := newRecorder()
	srv, err := Listen("127.0.0.1:0", rec.accept, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.Addr(), Hello{Worker: 1})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixNano()
	written := make(chan error, 1)
	c.OutcomeThen(Outcome{Seq: 5, Kind: Succeeded, Attempt: 1, Done: 1}, func(err error) { written <- err })
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixNano()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-rec.bye
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if o := rec.outcomes[5]; o.Done < before || o.Done > after {
		t.Fatalf("outcome %+v: Done not between %d and %d", o, before, after)
	}
	c.OutcomeThen(Outcome{Seq: 6, Kind: Succeeded}, func(err error) { written <- err })
	if err := <-written; !errors.Is(err, ErrClosed) {
		t.Fatalf("OutcomeThen after Close: %v, want ErrClosed", err)
	}
}
