package depsim

import (
	"context"
	"errors"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func client(t *testing.T, url string, timeout time.Duration) *Client {
	t.Helper()
	c := NewClient(url, timeout)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestZeroConfigAnswersOK(t *testing.T) {
	s := start(t, Config{})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q", s.URL())
	}
	c := client(t, s.URL(), time.Second)
	for range 3 {
		if err := c.Call(testCtx(t)); err != nil {
			t.Fatalf("call: %v", err)
		}
	}
	if got := s.Stats(); got != (Stats{Requests: 3}) {
		t.Errorf("stats = %+v, want 3 requests, 0 errors", got)
	}
}

func TestErrorRateUsesRand(t *testing.T) {
	draws := []float64{0.1, 0.9, 0.29, 0.3, 0.5}
	var mu sync.Mutex
	s := start(t, Config{ErrorRate: 0.3, Rand: func() float64 {
		mu.Lock()
		defer mu.Unlock()
		d := draws[0]
		draws = draws[1:]
		return d
	}})
	c := client(t, s.URL(), time.Second)
	want := []bool{true, false, true, false, false} // draw < 0.3 fails
	for i, fail := range want {
		err := c.Call(testCtx(t))
		var se *StatusError
		if fail != (err != nil) {
			t.Errorf("call %d: err = %v, want failure %v", i, err, fail)
		}
		if fail && (!errors.As(err, &se) || se.Code != 503) {
			t.Errorf("call %d: err = %v, want a 503 StatusError", i, err)
		}
	}
	if got := s.Stats(); got != (Stats{Requests: 5, Errors: 2}) {
		t.Errorf("stats = %+v, want 5 requests, 2 errors", got)
	}
}

func TestSeedRepeats(t *testing.T) {
	pattern := func() string {
		s := start(t, Config{ErrorRate: 0.5, Seed: 7})
		c := client(t, s.URL(), time.Second)
		var b strings.Builder
		for range 40 {
			if c.Call(testCtx(t)) != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b := pattern(), pattern()
	if a != b {
		t.Errorf("same seed, different outcomes:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Errorf("error rate 0.5 over 40 calls gave %s", a)
	}
}

func TestLatencyDoesNotSerialise(t *testing.T) {
	const latency = 300 * time.Millisecond
	s := start(t, Config{Latency: latency})
	c := client(t, s.URL(), 5*time.Second)
	ctx := testCtx(t)
	const n = 10
	errs := make(chan error, n)
	begin := time.Now()
	for range n {
		go func() {
			callStart := time.Now()
			err := c.Call(ctx)
			if err == nil && time.Since(callStart) < latency {
				err = errors.New("answered before the latency")
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("call: %v", err)
		}
	}
	// Served one after another, 10 calls would take 3 s.
	if d := time.Since(begin); d > 4*latency {
		t.Errorf("%d concurrent calls took %v, want < %v", n, d, 4*latency)
	}
}

func TestLiveAdjustment(t *testing.T) {
	s := start(t, Config{Latency: 5 * time.Second})
	c := client(t, s.URL(), 100*time.Millisecond)
	ctx := testCtx(t)
	begin := time.Now()
	err := c.Call(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call against a 5 s latency with a 100 ms timeout: %v, want deadline exceeded", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("timed-out call took %v", d)
	}
	if err := s.SetLatency(0, 0); err != nil {
		t.Fatalf("set latency: %v", err)
	}
	if err := c.Call(ctx); err != nil {
		t.Fatalf("call after removing latency: %v", err)
	}
	if err := s.SetErrorRate(1); err != nil {
		t.Fatalf("set error rate: %v", err)
	}
	if err := c.Call(ctx); err == nil {
		t.Error("call succeeded with error rate 1")
	}
	if s.SetErrorRate(1.5) == nil || s.SetLatency(-time.Second, 0) == nil {
		t.Error("out-of-range settings accepted")
	}
	if got := s.Stats(); got.Errors != 1 || got.Requests != 2 {
		t.Errorf("stats = %+v, want 2 requests (the timed-out one is not counted), 1 error", got)
	}
}

func TestJitterStaysInRange(t *testing.T) {
	var mu sync.Mutex
	draws := []float64{0, 0.999}
	s := start(t, Config{Latency: 300 * time.Millisecond, Jitter: 200 * time.Millisecond, Rand: func() float64 {
		mu.Lock()
		defer mu.Unlock()
		d := draws[0]
		draws = draws[1:]
		return d
	}})
	c := client(t, s.URL(), 5*time.Second)
	for i, want := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond} {
		begin := time.Now()
		if err := c.Call(testCtx(t)); err != nil {
			t.Fatalf("call: %v", err)
		}
		if d := time.Since(begin); d < want-10*time.Millisecond || d > want+300*time.Millisecond {
			t.Errorf("call %d took %v, want about %v", i, d, want)
		}
	}
}

func TestKeepAliveReused(t *testing.T) {
	s := start(t, Config{})
	c := client(t, s.URL(), time.Second)
	var reused []bool
	ctx := httptrace.WithClientTrace(testCtx(t), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
	})
	for range 3 {
		if err := c.Call(ctx); err != nil {
			t.Fatalf("call: %v", err)
		}
	}
	if len(reused) != 3 || reused[0] || !reused[1] || !reused[2] {
		t.Errorf("connection reuse = %v, want [false true true]", reused)
	}
}

func TestCloseReturnsSleepingRequests(t *testing.T) {
	inHandler := make(chan struct{}, 1)
	s, err := Start(context.Background(), Config{Latency: time.Minute, ErrorRate: 0.001, Rand: func() float64 {
		select {
		case inHandler <- struct{}{}:
		default:
		}
		return 0.5
	}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	c := client(t, s.URL(), 0)
	ctx := testCtx(t)
	called := make(chan error, 1)
	go func() { called <- c.Call(ctx) }()
	select {
	case <-inHandler:
	case <-ctx.Done():
		t.Fatal("request never reached the handler")
	}
	begin := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("close took %v with a request sleeping", d)
	}
	select {
	case err := <-called:
		if err == nil {
			t.Error("sleeping call succeeded after close")
		}
	case <-ctx.Done():
		t.Fatal("sleeping call did not return after close")
	}
}

func TestContextStopsServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Config{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	c := client(t, s.URL(), time.Second)
	if err := c.Call(testCtx(t)); err != nil {
		t.Fatalf("call: %v", err)
	}
	cancel()
	if err := s.Close(); err != nil {
		t.Fatalf("close after cancel: %v", err)
	}
	c.CloseIdleConnections()
	if err := c.Call(testCtx(t)); err == nil {
		t.Error("call succeeded after the context was cancelled")
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := Start(context.Background(), Config{Latency: -1, Jitter: -1, ErrorRate: 2})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"latency", "jitter", "error rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
