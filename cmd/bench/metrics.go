package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/benchmq/bench/report/live"
)

// metricsServer serves `bench run --metrics-addr`: the run's live figures at
// /metrics, for Prometheus.
type metricsServer struct {
	addr string // as bound: a :0 port is resolved
	coll *live.Collector
	srv  *http.Server
	done chan error
	// stderr hears of a server that ended on its own.
	stderr io.Writer
}

func serveMetrics(addr string, stderr io.Writer) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	reg := prometheus.NewRegistry()
	m := &metricsServer{addr: ln.Addr().String(), coll: live.NewCollector(), done: make(chan error, 1), stderr: stderr}
	if err := reg.Register(m.coll); err != nil {
		ln.Close()
		return nil, fmt.Errorf("register live metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { m.done <- m.srv.Serve(ln) }()
	return m, nil
}

func (m *metricsServer) update(s live.Snapshot) { m.coll.Update(s) }

// close stops serving; the last figures were there until now.
func (m *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serr := <-m.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		fmt.Fprintln(m.stderr, "bench run: metrics server:", err)
	}
}
