// Package simworker is `bench worker`: a worker process running the simulated
// job of a scenario (work time, failures, dependency calls, held memory, an
// emitted event) on the worker runtime, reporting every final outcome and its
// stats to the runner over telemetry.
package simworker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/worker"
)

// Config is what one worker process runs. The runner writes it as JSON; by
// hand, FromScenario builds it from a scenario file.
type Config struct {
	Worker    int    `json:"worker"`    // index of this process, for telemetry
	URL       string `json:"url"`       // AMQP URL (through the broker proxy when faults are injected)
	Telemetry string `json:"telemetry"` // runner's telemetry address; empty = none (by hand)

	App       string `json:"app"`
	Task      string `json:"task,omitempty"`
	Event     string `json:"event,omitempty"`
	QueueType string `json:"queue_type"`

	Prefetch    int           `json:"prefetch"`
	Concurrency int           `json:"concurrency"`
	Timeout     time.Duration `json:"timeout"`
	RateLimit   float64       `json:"rate_limit"`

	Retry struct {
		MaxAttempts int           `json:"max_attempts"`
		MinDelay    time.Duration `json:"min_delay"`
		MaxDelay    time.Duration `json:"max_delay"`
		Jitter      bool          `json:"jitter"`
		Mode        string        `json:"mode"`
	} `json:"retry"`
	Breaker struct {
		Enabled      bool          `json:"enabled"`
		FailureRatio float64       `json:"failure_ratio"`
		MinRequests  int           `json:"min_requests"`
		OpenFor      time.Duration `json:"open_for"`
	} `json:"breaker"`

	Work            scenarios.Dist `json:"work"`
	FailRate        float64        `json:"fail_rate"`
	FatalRate       float64        `json:"fatal_rate"`
	DependencyCalls int            `json:"dependency_calls"`
	DependencyURL   string         `json:"dependency_url,omitempty"`
	DependencyTO    time.Duration  `json:"dependency_timeout"`
	Hold            int64          `json:"hold"`
	Emit            string         `json:"emit,omitempty"`

	Seed          int64         `json:"seed"`
	StatsInterval time.Duration `json:"stats_interval"` // 0 = 200ms
	ShutdownAfter time.Duration `json:"shutdown_timeout"`
}

// FromScenario builds the worker config of one variant's scenario.
func FromScenario(s *scenarios.Scenario) Config {
	var c Config
	c.App, c.Task, c.Event = s.App, s.Task, s.Event
	c.QueueType = s.Queue.Type
	w := s.Workers
	c.Prefetch, c.Concurrency, c.Timeout, c.RateLimit = w.Prefetch, w.Concurrency, w.Timeout, w.RateLimit
	c.Retry.MaxAttempts, c.Retry.MinDelay, c.Retry.MaxDelay = w.Retry.MaxAttempts, w.Retry.MinDelay, w.Retry.MaxDelay
	c.Retry.Jitter, c.Retry.Mode = w.Retry.Jitter, w.Retry.Mode
	c.Breaker.Enabled, c.Breaker.FailureRatio = w.Breaker.Enabled, w.Breaker.FailureRatio
	c.Breaker.MinRequests, c.Breaker.OpenFor = w.Breaker.MinRequests, w.Breaker.OpenFor
	c.Work = s.Job.Work
	c.FailRate, c.FatalRate = s.Job.FailRate, s.Job.FatalRate
	c.DependencyCalls, c.Hold, c.Emit = s.Job.DependencyCalls, s.Job.Hold, s.Job.Emit
	c.DependencyTO = 2 * time.Second
	c.Seed = s.Seed
	return c
}

// RetryPolicy is the runtime's retry policy of this config.
func (c *Config) RetryPolicy() worker.RetryPolicy {
	r := c.Retry
	return worker.RetryPolicy{MaxAttempts: r.MaxAttempts, MinDelay: r.MinDelay, MaxDelay: r.MaxDelay, Jitter: r.Jitter, Mode: worker.RetryMode(r.Mode)}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("worker config: url is required"))
	}
	if (c.Task == "") == (c.Event == "") {
		errs = append(errs, errors.New("worker config: exactly one of task and event is required"))
	}
	if c.DependencyCalls > 0 && c.DependencyURL == "" {
		errs = append(errs, errors.New("worker config: dependency_calls needs dependency_url"))
	}
	if c.FailRate < 0 || c.FailRate > 1 || c.FatalRate < 0 || c.FatalRate > 1 {
		errs = append(errs, errors.New("worker config: fail_rate and fatal_rate must be in [0, 1]"))
	}
	if c.Hold < 0 {
		errs = append(errs, errors.New("worker config: hold must not be negative"))
	}
	return errors.Join(errs...)
}

// ReadConfig reads a JSON config written by the runner.
func ReadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read worker config: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("parse worker config %s: %w", path, err)
	}
	return c, nil
}

// WriteConfig writes c as JSON for a worker process to read.
func WriteConfig(path string, c Config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode worker config: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write worker config: %w", err)
	}
	return nil
}
