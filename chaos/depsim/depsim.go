// Package depsim is the simulated dependency: an HTTP server standing in for
// the third-party APIs (GitHub, AWS, ...) that workers call while handling a
// job. It answers after a configurable latency and fails a configurable share
// of requests with 503, both adjustable while it runs.
package depsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server. The zero value answers every request at once
// with 200.
type Config struct {
	// Latency is how long the server takes to answer a request.
	Latency time.Duration
	// Jitter spreads the latency uniformly over [Latency-Jitter, Latency+Jitter],
	// never below zero.
	Jitter time.Duration
	// ErrorRate is the probability in [0, 1] that a request is answered 503.
	ErrorRate float64
	// Seed seeds the draws for jitter and errors, so a run can be repeated.
	Seed int64
	// Rand, when set, replaces the seeded generator: it returns a number in
	// [0, 1). It is called under a lock. For tests.
	Rand func() float64
}

func (c Config) validate() error {
	var errs []error
	if c.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v is negative", c.Latency))
	}
	if c.Jitter < 0 {
		errs = append(errs, fmt.Errorf("jitter %v is negative", c.Jitter))
	}
	if err := checkRate(c.ErrorRate); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkRate(r float64) error {
	if !(r >= 0 && r <= 1) { // also rejects NaN
		return fmt.Errorf("error rate %v is outside [0, 1]", r)
	}
	return nil
}

// Stats counts what the server answered.
type Stats struct {
	Requests int64 // requests answered, errors included; not those whose caller gave up
	Errors   int64 // requests answered 503
}

// Server is a running simulated dependency.
type Server struct {
	url  string
	srv  *http.Server
	done chan struct{} // closed by Close: sleeping requests return at once

	mu        sync.Mutex
	latency   time.Duration
	jitter    time.Duration
	errorRate float64
	rand      func() float64

	requests atomic.Int64
	errors   atomic.Int64

	// Handlers are counted by hand rather than with a WaitGroup: one may
	// start while Close is already waiting.
	hmu     sync.Mutex
	active  int
	closing bool
	idle    chan struct{} // closed when closing and no handler is active

	serving   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start listens on 127.0.0.1 on a free port and serves until Close is called
// or ctx is done.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("start dependency: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start dependency: %w", err)
	}
	s := &Server{
		url:       "http://" + ln.Addr().String(),
		done:      make(chan struct{}),
		idle:      make(chan struct{}),
		latency:   cfg.Latency,
		jitter:    cfg.Jitter,
		errorRate: cfg.ErrorRate,
		rand:      cfg.Rand,
	}
	if s.rand == nil {
		s.rand = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x64657073696d)).Float64
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	s.serving.Add(2)
	go func() {
		defer s.serving.Done()
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed once Close runs
	}()
	go func() {
		defer s.serving.Done()
		select {
		case <-ctx.Done():
			_ = s.shutdown()
		case <-s.done:
		}
	}()
	return s, nil
}

// URL returns the server's base URL, "http://127.0.0.1:port".
func (s *Server) URL() string { return s.url }

// Addr returns the server's host:port, for a proxy in front of it.
func (s *Server) Addr() string { return s.url[len("http://"):] }

// SetLatency changes the latency and jitter of requests that arrive from now on.
func (s *Server) SetLatency(latency, jitter time.Duration) error {
	if latency < 0 || jitter < 0 {
		return fmt.Errorf("set dependency latency: latency %v and jitter %v must not be negative", latency, jitter)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency, s.jitter = latency, jitter
	return nil
}

// SetErrorRate changes the share of requests answered 503.
func (s *Server) SetErrorRate(r float64) error {
	if err := checkRate(r); err != nil {
		return fmt.Errorf("set dependency error rate: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorRate = r
	return nil
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Errors: s.errors.Load()}
}

// draw decides one request's delay and outcome.
func (s *Server) draw() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.latency
	if s.jitter > 0 {
		d += time.Duration((s.rand()*2 - 1) * float64(s.jitter))
		d = max(d, 0)
	}
	fail := s.errorRate > 0 && s.rand() < s.errorRate
	return d, fail
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "dependency shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.leave()
	delay, fail := s.draw()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // the caller gave up; nothing to count
		case <-s.done:
			http.Error(w, "dependency shutting down", http.StatusServiceUnavailable)
			return
		}
	}
	s.requests.Add(1)
	if fail {
		s.errors.Add(1)
		http.Error(w, "simulated failure", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}` + "\n"))
}

// Close stops the server: requests waiting out their latency return at once,
// open connections are closed. It waits for every request handler.
func (s *Server) Close() error {
	err := s.shutdown()
	s.serving.Wait()
	return err
}

func (s *Server) shutdown() error {
	s.closeOnce.Do(func() {
		close(s.done)
		if err := s.srv.Close(); err != nil {
			s.closeErr = fmt.Errorf("close dependency: %w", err)
		}
		s.hmu.Lock()
		s.closing = true
		if s.active == 0 {
			close(s.idle)
		}
		s.hmu.Unlock()
		<-s.idle
	})
	return s.closeErr
}

func (s *Server) enter() bool {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.closing {
		return false
	}
	s.active++
	return true
}

func (s *Server) leave() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.active--
	if s.closing && s.active == 0 {
		close(s.idle)
	}
}
