package telemetry

import (
	"encoding/json"
	"time"
)

// The environment bench gives a worker process it spawns from
// workers.command. A service built on the runtime (worker/) that finds
// EnvTelemetry set reports to the runner by itself, with no code change.
const (
	EnvTelemetry   = "BENCH_TELEMETRY"       // the runner's telemetry address, host:port
	EnvWorkerIndex = "BENCH_WORKER_INDEX"    // the process's index, 0 to processes-1; a respawn keeps it
	EnvRunID       = "BENCH_RUN_ID"          // the variant's run id (the TIDs encode it)
	EnvSettings    = "BENCH_WORKER_SETTINGS" // Overrides as JSON; absent: none
)

// Headers of every job bench publishes; the runtime reads them under bench.
const (
	// HeaderSeq is the job's run-unique sequence number (int64).
	HeaderSeq = "x-bench-seq"
	// HeaderIntended is when the job was meant to be sent (int64 Unix nanoseconds).
	HeaderIntended = "x-bench-intended"
)

// Overrides are the runtime settings a scenario gives a worker built on the
// runtime (workers.prefetch, concurrency, timeout, rate_limit, burst, retry,
// breaker): they override the service's own Config. A nil field, and a key
// absent from Retry or Breaker, is not given.
type Overrides struct {
	Prefetch    *int           `json:"prefetch,omitempty"`
	Concurrency *int           `json:"concurrency,omitempty"`
	Timeout     *time.Duration `json:"timeout,omitempty"`
	RateLimit   *float64       `json:"rate_limit,omitempty"`
	Burst       *int           `json:"burst,omitempty"`
	// Retry and Breaker hold the given keys of worker.RetryPolicy and
	// worker.BreakerConfig in those types' JSON.
	Retry   json.RawMessage `json:"retry,omitempty"`
	Breaker json.RawMessage `json:"breaker,omitempty"`
}

// Empty reports whether o overrides nothing.
func (o Overrides) Empty() bool {
	return o.Prefetch == nil && o.Concurrency == nil && o.Timeout == nil && o.RateLimit == nil && o.Burst == nil &&
		len(o.Retry) == 0 && len(o.Breaker) == 0
}
