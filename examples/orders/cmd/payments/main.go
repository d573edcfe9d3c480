// Command payments serves the orders example's payments dependency.
package main

import (
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/benchmq/bench/examples/orders/payments"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	latency := flag.Duration("latency", 5*time.Millisecond, "time each charge takes")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(3)
	}
	srv := &http.Server{Handler: payments.Handler(*latency), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		<-c
		_ = srv.Close()
	}()
	slog.Info("payments listening", "addr", ln.Addr().String(), "latency", *latency)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}
