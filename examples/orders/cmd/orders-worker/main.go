// Command orders-worker runs the orders service: AMQP_URL is the broker,
// PAYMENTS_ADDR the payments service (host:port).
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/benchmq/bench/examples/orders"
	"github.com/benchmq/bench/worker"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := orders.Config(envOr("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
	cfg.Logger = log
	w, err := worker.New(cfg)
	if err != nil {
		log.Error("configure", "err", err)
		os.Exit(2)
	}
	if _, err := orders.New(w, envOr("PAYMENTS_ADDR", "127.0.0.1:8081")); err != nil {
		log.Error("configure", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-w.Ready():
			log.Info("orders worker ready")
		case <-ctx.Done():
		}
	}()
	if err := w.Run(ctx); err != nil {
		log.Error("orders worker stopped", "err", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
