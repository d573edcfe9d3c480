// Package scenarios reads scenario files: strict YAML parsing with
// file:line:col errors, --set overrides and matrix expansion into variants.
// The key names are a contract (see docs/scenarios.md); every default below is
// what an absent key means.
package scenarios

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/report/gate"
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
	Load       []Phase // at least one
	Faults     []Fault
	Matrix     []Axis // in file order; nil in a variant

	DrainTimeout time.Duration // default 120s
	Gates        []Gate
	Baseline     Baseline
	Chaos        Chaos

	File   string // as given to Parse
	SHA256 string // hex SHA-256 of Source
	Source []byte // the file's bytes

	root     *yaml.Node // the document after --set, before matrix values
	origin   origins
	variants []Variant
}

// Broker says where the broker comes from. Both zero: --amqp-url, then
// $AMQP_URL, then a managed node.
type Broker struct {
	URL     string
	Managed bool // start a private rabbitmq-server node for the run
}

// Queue configures the task's or event's queue.
type Queue struct {
	Type string // classic (default) | quorum
}

// Workers configures the `bench worker` processes.
type Workers struct {
	Processes   int           // OS processes; default 1
	Concurrency int           // handler goroutines per process; default 1
	Prefetch    int           // basic.qos; default 10; an explicit 0 means unlimited
	Timeout     time.Duration // per attempt; default 30s
	RateLimit   float64       // jobs/s per process; default 0 = none
	Retry       Retry
	Breaker     Breaker
}

// Retry configures backoff and the retry limit.
type Retry struct {
	MaxAttempts int           // default 5; 1 = no retries
	MinDelay    time.Duration // default 100ms
	MaxDelay    time.Duration // default 10s; never below MinDelay
	Jitter      bool          // default true
	Mode        string        // broker (default) | inprocess
}

// Breaker configures the circuit breaker.
type Breaker struct {
	Enabled      bool          // default false
	FailureRatio float64       // default 0.5, in (0, 1]
	MinRequests  int           // default 20
	OpenFor      time.Duration // default 5s
}

// Job configures the simulated handler.
type Job struct {
	Work            Dist    // default fixed 0
	FailRate        float64 // retriable failure per attempt, in [0, 1]; default 0
	FatalRate       float64 // permanent failure per attempt, in [0, 1]; default 0
	DependencyCalls int     // HTTP calls to the simulated dependency per attempt; default 0
	Hold            int64   // bytes held while the handler runs; default 0
	Emit            string  // event published on success; default none
}

// Dependency configures the simulated HTTP dependency.
type Dependency struct {
	Latency   time.Duration // default 0
	Jitter    time.Duration // spreads latency uniformly over [Latency-Jitter, Latency+Jitter], never below 0; default 0
	ErrorRate float64       // in [0, 1]; default 0
}

// Phase kinds.
const (
	Spike  = "spike"
	Steady = "steady"
	Ramp   = "ramp"
)

// Phase is one load phase.
type Phase struct {
	Kind string        // spike | steady | ramp
	Jobs int           // spike: jobs published at once
	Rate float64       // steady: jobs/s
	For  time.Duration // steady: duration
	From float64       // ramp: jobs/s at the start
	To   float64       // ramp: jobs/s at the end
	Over time.Duration // ramp: duration
	Size int64         // payload bytes; default 1KiB
	Pos  Pos
}

// Duration is how long the phase publishes (0 for a spike).
func (p Phase) Duration() time.Duration {
	switch p.Kind {
	case Steady:
		return p.For
	case Ramp:
		return p.Over
	}
	return 0
}

// JobCount is the number of jobs the phase publishes (rounded for timed phases).
func (p Phase) JobCount() int64 {
	switch p.Kind {
	case Spike:
		return int64(p.Jobs)
	case Steady:
		return int64(p.Rate*p.For.Seconds() + 0.5)
	case Ramp:
		return int64((p.From+p.To)/2*p.Over.Seconds() + 0.5)
	}
	return 0
}

// Fault targets.
const (
	TargetDependency = "dependency"
	TargetBroker     = "broker"
	TargetWorker     = "worker"
)

// BriefFor is how long a reset_peer or timeout toxic without `for` stays applied.
const BriefFor = time.Second

// Fault is one scheduled fault. Exactly one of Toxic, Down and Action is set.
type Fault struct {
	At     time.Duration // after the load starts
	For    time.Duration // 0 for instantaneous actions (restart, kill, stop)
	Target string        // dependency | broker | worker
	// Toxic is a Toxiproxy toxic type: latency, bandwidth, slow_close,
	// timeout, reset_peer, slicer, limit_data.
	Toxic    string
	Stream   string  // toxics: down (default; server→client), up, or both
	Toxicity float64 // toxics: probability in (0, 1]; default 1
	// Attrs are the toxic's attributes in Toxiproxy's units: latency and
	// jitter in ms, rate in KB/s, timeout in ms, slow_close delay in ms,
	// slicer delay in µs, bytes/average_size/size_variation in bytes.
	Attrs  map[string]int64
	Down   bool   // the proxy is disabled for For
	Action string // broker: restart | kill | block; worker: kill | stop | pause
	Pos    Pos
}

// Kind names the fault for results: the toxic, "down", or the action.
func (f Fault) Kind() string {
	switch {
	case f.Toxic != "":
		return f.Toxic
	case f.Down:
		return "down"
	}
	return f.Action
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
	// value as written); empty: every variant.
	When map[string]string
}

// Applies reports whether g is evaluated for a variant with these params.
func (g Gate) Applies(params map[string]any) bool {
	for k, want := range g.When {
		v, ok := params[k]
		if !ok || fmt.Sprint(v) != want {
			return false
		}
	}
	return true
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
		n += p.JobCount()
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
