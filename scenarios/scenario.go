// Package scenarios reads scenario files: strict YAML parsing with
// file:line:col errors, --set overrides and matrix expansion into variants.
// The key names are a contract (see docs/scenarios.md); every default below is
// what an absent key means.
package scenarios

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/gate"
	"github.com/benchmq/bench/worker"
)

// Scenario is one decoded and validated scenario file (or one matrix variant of it).
type Scenario struct {
	Name        string // required, [a-z0-9-]+
	Description string
	Seed        int64 // meaningful only when SeedSet; the runner picks and records one otherwise
	SeedSet     bool

	Broker Broker
	// App owns the task or subscribes to the event. Required with event;
	// with task it defaults to the task's first segment and must equal it.
	App   string
	Task  string // app.model.verb; exactly one of Task and Event is set
	Event string // model.verbed
	Queue Queue

	Workers    Workers
	Job        Job
	Dependency Dependency
	// Completion is how bench sees a job of workers.command finish from the
	// outside (black-box mode); its Event is empty otherwise.
	Completion Completion
	// Dependencies are the real downstream services of workers.command, each
	// behind a proxy that faults act on.
	Dependencies []NamedDependency
	Load         []Phase // at least one
	Faults       []Fault
	Matrix       []Axis // in file order; nil in a variant

	DrainTimeout time.Duration // default 120s
	Gates        []Gate
	// SLO is the service level objective each variant is judged against
	// (a verdict, not a gate); nil without one.
	SLO *report.SLO
	// Search asks for each variant's highest rate that meets the SLO.
	Search    Search
	Baseline  Baseline
	Chaos     Chaos
	Placement Placement // agents on other hosts; zero: everything on the runner's host

	File   string // as given to Parse
	SHA256 string // hex SHA-256 of Source
	Source []byte // the file's bytes

	// What runs: the --set overrides as given, the document after them (pinned
	// matrix keys dropped from the matrix) as YAML, and its hex SHA-256.
	Overrides       []string
	Effective       []byte
	EffectiveSHA256 string
	// Pinned holds the matrix keys a --set gave one value: key -> the value.
	Pinned map[string]any

	sloPos   Pos
	root     *yaml.Node // the document after --set, before matrix values
	origin   origins
	variants []Variant
}

// Broker says where the broker comes from. Both zero: --amqp-url, then
// $AMQP_URL, then a managed node.
type Broker struct {
	URL     string
	Managed bool // start a private rabbitmq-server node for the run
	// Nodes is how many nodes the managed broker has; 0 means 1, and 2 or
	// more a private cluster.
	Nodes int
}

// Size is the number of the broker's nodes: Nodes, at least 1.
func (b Broker) Size() int { return max(b.Nodes, 1) }

// Cluster reports whether the run starts a private cluster.
func (b Broker) Cluster() bool { return b.Managed && b.Nodes > 1 }

// Queue configures the task's or event's queue.
type Queue struct {
	Type string `json:"type"` // worker.QueueClassic (default) | worker.QueueQuorum
}

// Workers configures the worker processes. Retry and Breaker are the
// runtime's own types: what the scenario says is what the worker runs.
type Workers struct {
	Processes   int                  `json:"processes"`   // OS processes; default 1
	Concurrency int                  `json:"concurrency"` // handler goroutines per process; default 1
	Prefetch    int                  `json:"prefetch"`    // basic.qos; default 10; an explicit 0 means unlimited
	Timeout     time.Duration        `json:"timeout"`     // per attempt; default 30s
	RateLimit   float64              `json:"rate_limit"`  // jobs/s per process; default 0 = none
	Burst       int                  `json:"burst"`       // token bucket size of the rate limit; default 1
	Retry       worker.RetryPolicy   `json:"retry"`
	Breaker     worker.BreakerConfig `json:"breaker"`

	// Command runs the user's own worker (argv) instead of `bench worker`;
	// Env is added to its environment and Ready says when it is ready. See
	// ownworker.go.
	Command []string          `json:"-"`
	Env     map[string]string `json:"-"`
	Ready   Ready             `json:"-"`
	// Given lists the runtime settings the scenario (or its matrix, or a
	// --set) gives itself, as key paths under workers ("prefetch",
	// "retry.max_attempts"): with Command, these and only these override the
	// service's own Config.
	Given []string `json:"-"`
}

// Apply sets the runtime settings of w on c.
func (w Workers) Apply(c *worker.Config) {
	c.Prefetch, c.Concurrency, c.Timeout, c.RateLimit, c.Burst = w.Prefetch, w.Concurrency, w.Timeout, w.RateLimit, w.Burst
	c.Retry, c.Breaker = w.Retry, w.Breaker
}

// Job configures the simulated handler.
type Job struct {
	Work            Dist    `json:"work"`             // default fixed 0
	FailRate        float64 `json:"fail_rate"`        // retriable failure per attempt, in [0, 1]; default 0
	FatalRate       float64 `json:"fatal_rate"`       // permanent failure per attempt, in [0, 1]; default 0
	DependencyCalls int     `json:"dependency_calls"` // HTTP calls to the simulated dependency per attempt; default 0
	Hold            int64   `json:"hold"`             // bytes held while the handler runs; default 0
	Emit            string  `json:"emit,omitempty"`   // event published on success; default none

	// What the harness publishes for workers.command (ownworker.go).
	Publish Publish  `json:"-"` // where; default the task's queue or the event's exchange
	Body    Body     `json:"-"` // the body; default size bytes of filler
	TID     TIDPlace `json:"-"` // where the job's TID goes; default the runtime's TID header
}

// Dependency configures the simulated HTTP dependency.
type Dependency struct {
	Latency   time.Duration // default 0
	Jitter    time.Duration // spreads latency uniformly over [Latency-Jitter, Latency+Jitter], never below 0; default 0
	ErrorRate float64       // in [0, 1]; default 0
}

// Phase is one load phase: the load generator's own type, and where it was written.
type Phase struct {
	loadgen.Phase
	Pos Pos
}

// Fault is one scheduled fault: the fault vocabulary's Spec, and where it was written.
type Fault struct {
	fault.Spec
	Pos Pos
}

// Axis is one matrix key with its values.
type Axis struct {
	Key    string
	Values []any // decoded YAML values, for display and result params
	Pos    Pos   // of the key

	nodes []*yaml.Node
}

// Gate is one gate expression.
type Gate struct {
	Expr   *gate.Expr
	Source string
	Pos    Pos
	// When limits the gate to the variants whose matrix values match (key ->
	// value, decoded); empty: every variant.
	When map[string]any
	// Abort makes the runner check the gate during the run too, and end the
	// variant as soon as it fails for good (report.AbortFails).
	Abort bool

	whenPos map[string]Pos // of each when key
}

// Baseline configures the comparison against an earlier result.
type Baseline struct {
	// File is a result.json, as written: a relative path is relative to
	// the scenario file's directory (the caller resolves it against File).
	// Empty: no baseline unless --baseline.
	File string
	// MaxRegression is the allowed relative regression of any compared
	// metric, as a fraction (0.15 for "15%"); default 0 = the comparer's default.
	MaxRegression float64
	// Thresholds override MaxRegression per metric (gate metric names).
	Thresholds map[string]float64
	// MinSamples is the fewest latency samples a distribution needs to be compared; default 0 = any.
	MinSamples int
	// Gate names compared metrics that gate beyond the default ones (the
	// metric table's Gated), e.g. p99(end_to_end) for a scenario whose
	// queue is meant to back up; default none.
	Gate []string
	// Alpha is the significance level of the rank test; default 0 = 0.05.
	Alpha float64
	// AB is a matrix key with exactly two values: the run compares the
	// variants of its second value against those of its first (A/B within
	// one run, the variants interleaved); default "" = none.
	AB    string
	abPos Pos
}

// Chaos configures the fault injection environment.
type Chaos struct {
	// ToxiproxyURL points at an external Toxiproxy API instead of the embedded one.
	ToxiproxyURL string
}

// Variant is one combination of matrix values.
type Variant struct {
	Name       string         // e.g. "workers.prefetch=0" or "prefetch=0,concurrency=8"; "default" without a matrix
	Params     map[string]any // matrix key -> value
	ParamOrder []string       // matrix keys in file order
	Scenario   *Scenario      // the scenario with the combination applied; its Matrix is nil
}

// TotalJobs is the number of jobs the load phases publish.
func (s *Scenario) TotalJobs() int64 {
	var n int64
	for _, p := range s.Load {
		n += p.Count()
	}
	return n
}

// LoadDuration is how long the load phases take by schedule.
func (s *Scenario) LoadDuration() time.Duration {
	var d time.Duration
	for _, p := range s.Load {
		d += p.Duration()
	}
	return d
}

// Variants returns one variant per matrix combination, in file order (the
// last key varies fastest), or a single "default" variant without a matrix.
func (s *Scenario) Variants() ([]Variant, error) {
	if s.variants == nil {
		return nil, fmt.Errorf("expand matrix of %s: scenario was not built by Parse", s.Name)
	}
	return append([]Variant(nil), s.variants...), nil
}
