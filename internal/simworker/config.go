// Package simworker is `bench worker`: a worker process running the simulated
// job of a scenario (work time, failures, dependency calls, held memory, an
// emitted event) on the worker runtime, reporting every final outcome and its
// stats to the runner over telemetry.
package simworker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/worker"
)

// Config is what one worker process runs. The runner writes it as JSON; by
// hand, FromScenario builds it from a scenario file. The broker URL, which
// may hold a password, is never in the file: the process takes it from
// $AMQP_URL (or --amqp-url).
type Config struct {
	Worker int    `json:"worker"` // index of this process, for telemetry
	URL    string `json:"-"`      // AMQP URL (through the broker proxy when faults are injected)
	// URLs are a cluster's other nodes ($AMQP_URLS, space-separated): the
	// runtime fails over to them.
	URLs      []string `json:"-"`
	Telemetry string   `json:"telemetry"` // runner's telemetry address; empty = none (by hand)

	App       string `json:"app"`
	Task      string `json:"task,omitempty"`
	Event     string `json:"event,omitempty"`
	QueueType string `json:"queue_type"`

	// Workers and Job are the scenario's own sections: a scenario key reaches
	// the runtime without being copied field by field.
	Workers scenarios.Workers `json:"workers"`
	Job     scenarios.Job     `json:"job"`

	DependencyURL string        `json:"dependency_url,omitempty"`
	DependencyTO  time.Duration `json:"dependency_timeout"`

	Seed          int64         `json:"seed"`
	ShutdownAfter time.Duration `json:"shutdown_timeout"`
}

// FromScenario builds the worker config of one variant's scenario.
func FromScenario(s *scenarios.Scenario) Config {
	return Config{
		App: s.App, Task: s.Task, Event: s.Event, QueueType: s.Queue.Type,
		Workers: s.Workers, Job: s.Job,
		DependencyTO: 2 * time.Second,
		Seed:         s.Seed,
	}
}

// RuntimeConfig is the runtime's Config of this process.
func (c *Config) RuntimeConfig(log *slog.Logger) worker.Config {
	wc := worker.Config{URL: c.URL, URLs: c.URLs, App: c.App, QueueType: c.QueueType, Logger: log, ShutdownTimeout: c.ShutdownAfter}
	if len(c.URLs) > 0 {
		// A fleet spreads over the nodes, as behind a load balancer.
		wc.Failover = worker.FailoverRandom
	}
	c.Workers.Apply(&wc)
	return wc
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("worker config: no broker URL ($AMQP_URL or --amqp-url)"))
	}
	if (c.Task == "") == (c.Event == "") {
		errs = append(errs, errors.New("worker config: exactly one of task and event is required"))
	}
	if c.Job.DependencyCalls > 0 && c.DependencyURL == "" {
		errs = append(errs, errors.New("worker config: dependency_calls needs dependency_url"))
	}
	if j := c.Job; j.FailRate < 0 || j.FailRate > 1 || j.FatalRate < 0 || j.FatalRate > 1 {
		errs = append(errs, errors.New("worker config: fail_rate and fatal_rate must be in [0, 1]"))
	}
	if c.Job.Hold < 0 {
		errs = append(errs, errors.New("worker config: hold must not be negative"))
	}
	return errors.Join(errs...)
}

// SplitURLs reads $AMQP_URLS: URLs separated by spaces.
func SplitURLs(v string) []string { return strings.Fields(v) }

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
