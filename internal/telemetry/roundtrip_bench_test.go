package telemetry

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// countConn counts outcomes and closes all when the last expected one arrives.
type countConn struct {
	n, want atomic.Int64
	all     chan struct{}
}

func (c *countConn) Ready()              {}
func (c *countConn) Redelivered(_ int64) {}
func (c *countConn) Stats(_ Stats)       {}
func (c *countConn) Bye()                {}
func (c *countConn) Outcome(_ Outcome) {
	if c.n.Add(1) == c.want.Load() {
		close(c.all)
	}
}

// BenchmarkOutcomeRoundTrip is the telemetry a worker pays per job: Outcome from
// 8 concurrent handlers (one spike scenario's concurrency) until the record is on
// the socket, decoded by the runner's server over loopback TCP.
func BenchmarkOutcomeRoundTrip(b *testing.B) {
	cc := &countConn{all: make(chan struct{})}
	cc.want.Store(int64(b.N))
	srv, err := Listen("127.0.0.1:0", func(Hello) Conn { return cc }, func(err error) { b.Error(err) })
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer func() {
		if err := srv.Close(ctx); err != nil {
			b.Error(err)
		}
	}()
	c, err := Dial(ctx, srv.Addr(), Hello{Worker: 1})
	if err != nil {
		b.Fatal(err)
	}
	o := Outcome{Seq: 1, Kind: Succeeded, Attempt: 1, Intended: time.Now().UnixNano(), Done: time.Now().UnixNano(), Processing: time.Millisecond}
	b.ReportAllocs()
	b.SetParallelism(4) // GOMAXPROCS × 4 writers: 8 on the project's 2-core machines
	b.ResetTimer()
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Outcome(o); err != nil {
				b.Error(err)
				return
			}
		}
	})
	select {
	case <-cc.all:
	case <-ctx.Done():
		b.Fatalf("server decoded %d of %d outcomes", cc.n.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "outcomes/s")
	b.StopTimer()
	if err := c.Close(); err != nil {
		b.Error(err)
	}
}
