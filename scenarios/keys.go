package scenarios

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/worker"
)

// Limits that catch typos (a missing unit, an extra zero) rather than real intent.
const (
	maxDuration  = 24 * time.Hour
	maxProcesses = 256
	maxCount     = 1 << 30
	maxSize      = 1 << 30 // bytes per message or held per job
	maxAxes      = 100     // values per matrix key
	maxVariants  = 1000
	maxPhases    = 1000
	maxFaults    = 1000
	// maxJobs bounds one variant: the ledger holds a byte per job.
	maxJobs = 100_000_000
	// MaxFileSize bounds a scenario file.
	MaxFileSize = 1 << 20
)

var nameRe = regexp.MustCompile(`^[a-z0-9-]+$`)

// setDefaults gives every key its default: what an absent key means.
func (s *Scenario) setDefaults() {
	s.Queue.Type = worker.QueueClassic
	s.Workers = Workers{
		Processes:   1,
		Concurrency: 1,
		Prefetch:    10,
		Timeout:     30 * time.Second,
		Burst:       1,
		Retry: worker.RetryPolicy{MaxAttempts: 5, MinDelay: 100 * time.Millisecond,
			MaxDelay: 10 * time.Second, Jitter: true, Mode: worker.RetryBroker},
		Breaker: worker.BreakerConfig{FailureRatio: 0.5, MinRequests: 20, OpenFor: 5 * time.Second, Window: 10 * time.Second},
	}
	s.Job.Work = Dist{Kind: DistFixed}
	s.DrainTimeout = 120 * time.Second
	s.Search = Search{Settle: defaultSettle, Measure: defaultMeasure, Precision: defaultPrecision, MaxSteps: defaultMaxSteps}
}

// scenarioFields is every top-level key of a scenario file.
var scenarioFields = []field[Scenario]{
	patternKey(meta{Name: "name", Required: true, Doc: "the scenario's name; names the output directory"}, nameRe, "[a-z0-9-]+",
		func(s *Scenario) *string { return &s.Name }),
	strKey(meta{Name: "description", Doc: "what the scenario asks; shown in the report"}, nil,
		func(s *Scenario) *string { return &s.Description }),
	customKey(meta{Name: "seed", Doc: "seeds every random choice; a random one is picked and recorded when absent"},
		func() map[string]any { return map[string]any{"type": "integer"} }, decodeSeed),
	objKey(meta{Name: "broker", Doc: "where the broker comes from"}, func(s *Scenario) *Broker { return &s.Broker }, brokerFields, nil),
	strKey(meta{Name: "app", Doc: "the app owning the task or subscribing to the event; default: the task's first segment"}, worker.ValidateApp,
		func(s *Scenario) *string { return &s.App }),
	strKey(meta{Name: "task", Doc: "the task, app.model.verb; exactly one of task and event"}, nil,
		func(s *Scenario) *string { return &s.Task }),
	strKey(meta{Name: "event", Doc: "the event, model.verbed; its queue is <app>.<event>"}, worker.ValidateEvent,
		func(s *Scenario) *string { return &s.Event }),
	objKey(meta{Name: "queue", Doc: "the job queue"}, func(s *Scenario) *Queue { return &s.Queue }, []field[Queue]{
		enumKey(meta{Name: "type", Doc: "classic or quorum"}, []string{worker.QueueClassic, worker.QueueQuorum},
			func(q *Queue) *string { return &q.Type }),
	}, nil),
	objKey(meta{Name: "workers", Doc: "the worker processes and the runtime's settings"}, func(s *Scenario) *Workers { return &s.Workers }, workersFields, checkWorkers),
	objKey(meta{Name: "job", Doc: "the simulated handler, or what the harness publishes to your own worker"}, func(s *Scenario) *Job { return &s.Job }, jobFields, nil),
	objKey(meta{Name: "dependency", Doc: "the simulated HTTP dependency"}, func(s *Scenario) *Dependency { return &s.Dependency }, dependencyFields, nil),
	objKey(meta{Name: "completion", Doc: "black-box mode: how bench sees a job of workers.command finish"}, func(s *Scenario) *Completion { return &s.Completion }, completionFields, nil),
	customKey(meta{Name: "dependencies", Doc: "real downstream services of workers.command, each behind a proxy faults can name"}, dependenciesSchema, decodeDependencies),
	customKey(meta{Name: "load", Required: true, Doc: "the load phases, in order"}, loadSchema, decodeLoad),
	durKey(meta{Name: "drain_timeout", Doc: "how long to wait for every job's outcome after the load"}, true,
		func(s *Scenario) *time.Duration { return &s.DrainTimeout }),
	customKey(meta{Name: "faults", Doc: "the fault timeline (docs/faults.md)"}, faultsSchema, decodeFaults),
	customKey(meta{Name: "matrix", Doc: "key paths and the values they take: one variant per combination"}, matrixSchema, decodeMatrix),
	customKey(meta{Name: "gates", Doc: "expressions every variant must pass, e.g. lost == 0"}, gatesSchema, decodeGates),
	customKey(meta{Name: "slo", Doc: "the service level objective: rate and metric targets, e.g. {rate: 1500/s, \"p99(end_to_end)\": 250ms}; each variant gets a verdict, a miss does not fail the run"}, sloSchema, decodeSLO),
	objKey(meta{Name: "search", Doc: "find each variant's highest steady rate that meets the slo: step up, then bisect"}, func(s *Scenario) *Search { return &s.Search }, searchFields, nil),
	objKey(meta{Name: "baseline", Doc: "the comparison with an earlier result"}, func(s *Scenario) *Baseline { return &s.Baseline }, baselineFields, nil),
	objKey(meta{Name: "chaos", Doc: "the fault injection environment"}, func(s *Scenario) *Chaos { return &s.Chaos }, []field[Chaos]{
		strKey(meta{Name: "toxiproxy_url", Doc: "an external Toxiproxy API instead of the embedded one"}, checkHTTPURL,
			func(c *Chaos) *string { return &c.ToxiproxyURL }),
	}, nil),
	objKey(meta{Name: "placement", Doc: "run workers and generators on agents on other hosts (docs/agents.md)"}, func(s *Scenario) *Placement { return &s.Placement }, placementFields, nil),
}

var brokerFields = []field[Broker]{
	strKey(meta{Name: "url", Doc: "an amqp:// or amqps:// URL; without it --amqp-url, then $AMQP_URL, then a managed node"}, checkAMQPURL,
		func(b *Broker) *string { return &b.URL }),
	boolKey(meta{Name: "managed", Doc: "start a private rabbitmq-server node for the run (needed by broker node faults)"},
		func(b *Broker) *bool { return &b.Managed }),
	intKey(meta{Name: "nodes", Default: "1", Doc: "nodes of the managed broker: 2 or more start a private cluster (node faults, partitions)"}, 1, fault.MaxNodes,
		func(b *Broker) *int { return &b.Nodes }),
}

var workersFields = append([]field[Workers]{
	intKey(meta{Name: "processes", Doc: "worker OS processes: bench worker, or workers.command"}, 1, maxProcesses, func(w *Workers) *int { return &w.Processes }),
	intKey(meta{Name: "concurrency", Doc: "handler goroutines per process"}, 1, 100000, func(w *Workers) *int { return &w.Concurrency }),
	intKey(meta{Name: "prefetch", Doc: "basic.qos; an explicit 0 means unlimited"}, 0, 65535, func(w *Workers) *int { return &w.Prefetch }),
	durKey(meta{Name: "timeout", Doc: "per attempt; a timeout is a retriable failure"}, true, func(w *Workers) *time.Duration { return &w.Timeout }),
	rateKey(meta{Name: "rate_limit", Doc: "jobs/s per process; 0 = none"}, false, func(w *Workers) *float64 { return &w.RateLimit }),
	intKey(meta{Name: "burst", Doc: "token bucket size of the rate limit"}, 1, 100000, func(w *Workers) *int { return &w.Burst }),
	objKey(meta{Name: "retry", Doc: "backoff and the retry limit"}, func(w *Workers) *worker.RetryPolicy { return &w.Retry }, retryFields, checkRetry),
	objKey(meta{Name: "breaker", Doc: "the circuit breaker"}, func(w *Workers) *worker.BreakerConfig { return &w.Breaker }, breakerFields, nil),
}, ownWorkerFields...)

var retryFields = []field[worker.RetryPolicy]{
	intKey(meta{Name: "max_attempts", Doc: "attempts including the first; 1 = no retries"}, 1, 1000, func(p *worker.RetryPolicy) *int { return &p.MaxAttempts }),
	durKey(meta{Name: "min_delay", Doc: "the first backoff"}, true, func(p *worker.RetryPolicy) *time.Duration { return &p.MinDelay }),
	durKey(meta{Name: "max_delay", Doc: "the longest backoff; not below min_delay"}, true, func(p *worker.RetryPolicy) *time.Duration { return &p.MaxDelay }),
	boolKey(meta{Name: "jitter", Doc: "spread each delay over [d/2, d]"}, func(p *worker.RetryPolicy) *bool { return &p.Jitter }),
	enumKey(meta{Name: "mode", Doc: "broker: delays wait in TTL queues; inprocess: sleep holding the message, to show its cost"},
		[]string{string(worker.RetryBroker), string(worker.RetryInProcess)}, func(p *worker.RetryPolicy) *worker.RetryMode { return &p.Mode }),
}

// checkRetry applies the runtime's own checks of a retry policy.
func checkRetry(d *decoder, o *obj, p *worker.RetryPolicy) {
	if err := p.Validate(); err != nil {
		at := o.n
		if n := o.vals["max_delay"]; n != nil {
			at = n
		}
		for _, e := range unjoin(err) {
			d.errf(at, o.path, "%v", e)
		}
	}
}

var breakerFields = []field[worker.BreakerConfig]{
	boolKey(meta{Name: "enabled", Doc: "turn the breaker on"}, func(b *worker.BreakerConfig) *bool { return &b.Enabled }),
	numKey(meta{Name: "failure_ratio", Doc: "failed share of attempts that trips it"}, 0, 1, true, func(b *worker.BreakerConfig) *float64 { return &b.FailureRatio }),
	intKey(meta{Name: "min_requests", Doc: "attempts in the window before it may trip"}, 1, maxCount, func(b *worker.BreakerConfig) *int { return &b.MinRequests }),
	durKey(meta{Name: "open_for", Doc: "how long it stays open before probing"}, true, func(b *worker.BreakerConfig) *time.Duration { return &b.OpenFor }),
	durKey(meta{Name: "window", Doc: "the closed state's counting interval"}, true, func(b *worker.BreakerConfig) *time.Duration { return &b.Window }),
}

var jobFields = append([]field[Job]{
	customKey(meta{Name: "work", Doc: "how long the handler works: a duration or a distribution"}, distSchema,
		func(d *decoder, n *yaml.Node, path string, j *Job) { j.Work = d.dist(n, path) }),
	numKey(meta{Name: "fail_rate", Doc: "retriable failure per attempt"}, 0, 1, false, func(j *Job) *float64 { return &j.FailRate }),
	numKey(meta{Name: "fatal_rate", Doc: "permanent failure per attempt"}, 0, 1, false, func(j *Job) *float64 { return &j.FatalRate }),
	intKey(meta{Name: "dependency_calls", Doc: "HTTP calls to the simulated dependency per attempt"}, 0, 1000, func(j *Job) *int { return &j.DependencyCalls }),
	sizeKey(meta{Name: "hold", Doc: "memory held while the handler runs"}, maxSize, func(j *Job) *int64 { return &j.Hold }),
	strKey(meta{Name: "emit", Doc: "event published on success, carrying the job's TID"}, worker.ValidateEvent, func(j *Job) *string { return &j.Emit }),
}, ownJobFields...)

var dependencyFields = []field[Dependency]{
	durKey(meta{Name: "latency", Doc: "latency of every call"}, false, func(p *Dependency) *time.Duration { return &p.Latency }),
	durKey(meta{Name: "jitter", Doc: "spreads the latency over latency ± jitter"}, false, func(p *Dependency) *time.Duration { return &p.Jitter }),
	numKey(meta{Name: "error_rate", Doc: "share of calls that fail"}, 0, 1, false, func(p *Dependency) *float64 { return &p.ErrorRate }),
}

// phaseFields are the keys of each load phase kind.
var phaseFields = map[string][]field[loadgen.Phase]{
	loadgen.KindSpike: {
		intKey(meta{Name: "jobs", Required: true, Doc: "jobs published at once"}, 1, maxCount, func(p *loadgen.Phase) *int64 { return &p.Jobs }),
		sizeField,
	},
	loadgen.KindSteady: {
		rateKey(meta{Name: "rate", Required: true, Doc: "jobs per second"}, true, func(p *loadgen.Phase) *float64 { return &p.Rate }),
		durKey(meta{Name: "for", Required: true, Doc: "how long"}, true, func(p *loadgen.Phase) *time.Duration { return &p.For }),
		sizeField,
	},
	loadgen.KindRamp: {
		rateKey(meta{Name: "from", Required: true, Doc: "jobs per second at the start"}, false, func(p *loadgen.Phase) *float64 { return &p.From }),
		rateKey(meta{Name: "to", Required: true, Doc: "jobs per second at the end"}, false, func(p *loadgen.Phase) *float64 { return &p.To }),
		durKey(meta{Name: "over", Required: true, Doc: "how long"}, true, func(p *loadgen.Phase) *time.Duration { return &p.Over }),
		sizeField,
	},
}

// phaseKinds are the phase kinds in documentation order.
var phaseKinds = []string{loadgen.KindSpike, loadgen.KindSteady, loadgen.KindRamp}

var sizeField = sizeKey(meta{Name: "size", Doc: "payload size (default 1KiB)"}, maxSize, func(p *loadgen.Phase) *int { return &p.Size })

// defaultPhaseSize is a phase's payload size when it has no size key.
const defaultPhaseSize = 1 << 10

var baselineFields = []field[Baseline]{
	strKey(meta{Name: "file", Doc: "a result.json to compare with; relative to the scenario file"}, nil, func(b *Baseline) *string { return &b.File }),
	fractionKey(meta{Name: "max_regression", Doc: "allowed relative regression of any compared metric"}, func(b *Baseline) *float64 { return &b.MaxRegression }),
	customKey(meta{Name: "thresholds", Doc: "per-metric allowed regression"}, thresholdsSchema, decodeThresholds),
	intKey(meta{Name: "min_samples", Doc: "fewest samples a latency needs to be compared"}, 0, maxCount, func(b *Baseline) *int { return &b.MinSamples }),
	customKey(meta{Name: "gate", Doc: "compared metrics to gate beyond the default ones, e.g. [p99(end_to_end)] when the queue is meant to back up"},
		gateListSchema, decodeGateList),
	numKey(meta{Name: "alpha", Doc: "significance level of the rank test: a change counts only when p is below it"}, 0, 0.5, true,
		func(b *Baseline) *float64 { return &b.Alpha }),
	customKey(meta{Name: "ab", Doc: "a matrix key with two values: compare the variants of the second value with those of the first, within the run"},
		func() map[string]any { return map[string]any{"type": "string"} }, decodeAB),
}

func checkAMQPURL(v string) error {
	// The URL may hold a password: never echo it.
	if u, err := url.Parse(v); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return errors.New("must be an amqp:// or amqps:// URL with a host")
	}
	return nil
}

func checkHTTPURL(v string) error {
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// URL")
	}
	return nil
}

// unjoin returns the errors an errors.Join holds, recursively; nil for nil.
func unjoin(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, unjoin(e)...)
	}
	return out
}
