// Package orders is a small service on the worker runtime, measured by
// bench as users measure theirs (scenarios/examples/orders.yaml): it
// processes orders (task orders.order.process) by charging them at the
// payments service over HTTP, and announces each processed order
// (event order.processed). It knows nothing of bench: under `bench run` the
// runtime reports every job itself (white-box).
package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/benchmq/bench/worker"
)

// Task and Event are the service's names.
const (
	App   = "orders"
	Task  = "orders.order.process"
	Event = "order.processed"
)

// Order is the job's payload.
type Order struct {
	Order  int64  `json:"order"`
	SKU    string `json:"sku"`
	Amount int64  `json:"amount"`
}

// Config returns the service's own settings: under bench a scenario may
// override any of them (workers.prefetch, timeout, breaker, ...).
func Config(url string) worker.Config {
	return worker.Config{
		URL:         url,
		App:         App,
		Prefetch:    10,
		Concurrency: 8,
		Timeout:     time.Second,
		Retry:       worker.RetryPolicy{MaxAttempts: 6, MinDelay: 200 * time.Millisecond, MaxDelay: 3 * time.Second, Jitter: true},
		// When payments is sick, stop taking orders rather than burn their attempts.
		Breaker: worker.BreakerConfig{Enabled: true, FailureRatio: 0.5, MinRequests: 10, OpenFor: 2 * time.Second, Window: 2 * time.Second},
	}
}

// Service charges orders at the payments service.
type Service struct {
	w        *worker.Worker
	payments string // base URL, e.g. http://127.0.0.1:8081
	client   *http.Client
}

// New registers the service's handler on w.
func New(w *worker.Worker, paymentsAddr string) (*Service, error) {
	s := &Service{w: w, payments: "http://" + paymentsAddr, client: &http.Client{}}
	err := w.HandleTask(Task, worker.JSON(s.process), worker.WithRecovery(s.failed))
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", Task, err)
	}
	return s, nil
}

// process charges one order and announces it. A failed or slow charge is
// retried with backoff (the attempt's deadline bounds the call).
func (s *Service) process(ctx context.Context, job *worker.Job, o Order) error {
	if o.Amount <= 0 {
		return worker.Permanent(fmt.Errorf("order %d: amount %d", o.Order, o.Amount))
	}
	body, _ := json.Marshal(map[string]int64{"order": o.Order, "amount": o.Amount})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.payments+"/charge", bytes.NewReader(body))
	if err != nil {
		return worker.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("charge order %d: %w", o.Order, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("charge order %d: payments answered %s", o.Order, resp.Status)
	}
	return s.w.PublishEvent(ctx, Event, job.Body)
}

// failed is the recovery function: the order's attempts ran out.
func (s *Service) failed(ctx context.Context, job *worker.Job, cause error) error {
	worker.Logger(ctx).Error("order failed for good", "err", cause)
	return nil
}
