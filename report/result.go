package report

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// SchemaVersion is the version of the result.json layout written by this package.
// Fields are only ever added; none is renamed or removed within a version.
const SchemaVersion = 1

// Result is the contents of result.json (DESIGN.md §4.3).
type Result struct {
	SchemaVersion int       `json:"schema_version"`
	Passed        bool      `json:"passed"`
	Scenario      Scenario  `json:"scenario"`
	Env           Env       `json:"env"`
	Variants      []Variant `json:"variants"`

	// Additions beyond the §4.3 minimum.
	StartedAt   string `json:"started_at,omitempty"`  // RFC 3339, UTC
	FinishedAt  string `json:"finished_at,omitempty"` // RFC 3339, UTC
	Interrupted bool   `json:"interrupted,omitempty"` // the run was stopped (Ctrl-C) before it finished
	Error       string `json:"error,omitempty"`       // an environment failure that ended the run early

	// Repeated runs (bench run --repeat N): the number of runs combined into
	// this result; 0 for a single run. See Combine.
	Repeat int `json:"repeat,omitempty"`

	// SLO is the scenario's service level objective; nil without one.
	SLO *SLO `json:"slo,omitempty"`
	// Capacity is the answer to the SLO: the cells that meet it, cheapest
	// first, and why the others miss; nil without an SLO.
	Capacity *Capacity `json:"capacity,omitempty"`
}

// Scenario identifies the scenario file a result came from, and what ran:
// the file after the --set overrides.
type Scenario struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	SHA256      string `json:"sha256"` // of the file as read
	Seed        int64  `json:"seed"`
	Description string `json:"description,omitempty"`

	Overrides       []string `json:"overrides,omitempty"`        // the --set flags, in order, as given
	Effective       string   `json:"effective,omitempty"`        // the scenario that ran, as YAML: the file with the overrides applied and pinned matrix keys removed
	EffectiveSHA256 string   `json:"effective_sha256,omitempty"` // of Effective
	Namespace       string   `json:"namespace,omitempty"`        // --namespace: the prefix of the app, task and event names on the broker
}

// Env describes where a result was measured.
type Env struct {
	BrokerVersion string `json:"broker_version"`
	GoVersion     string `json:"go_version"`
	GitSHA        string `json:"git_sha"`
	Hostname      string `json:"hostname"`
	CPUs          int    `json:"cpus"`
	BrokerKind    string `json:"broker_kind,omitempty"` // external | managed | container
	OS            string `json:"os,omitempty"`
	BenchVersion  string `json:"bench_version,omitempty"` // `bench --version` of the binary that ran
}

// Variant is one cell of the scenario's matrix.
type Variant struct {
	Name         string               `json:"name"`
	Params       map[string]any       `json:"params"`
	Passed       bool                 `json:"passed"`
	Ledger       Ledger               `json:"ledger"`
	LatencyMS    Latencies            `json:"latency_ms"`
	Throughput   Throughput           `json:"throughput"`
	DrainSeconds float64              `json:"drain_seconds"`
	Peak         Peak                 `json:"peak"`
	Breaker      Breaker              `json:"breaker"`
	Faults       []Fault              `json:"faults"`
	Series       map[string][]float64 `json:"series"`
	Gates        []Gate               `json:"gates"`

	// Additions beyond the §4.3 minimum.
	LoadSeconds  float64           `json:"load_seconds,omitempty"`  // from the first intended send to the last publish
	LateSends    int64             `json:"late_sends"`              // publishes that left later than LateThresholdMS after their intended time
	LateMaxMS    float64           `json:"late_max_ms"`             // worst lateness of a publish
	Lateness     *Lateness         `json:"lateness,omitempty"`      // the generator's accuracy; nil without steady or ramp sends
	HarnessBound bool              `json:"harness_bound,omitempty"` // the load generator could not keep the schedule: latency is the harness's, not the workers'
	Histograms   map[string]string `json:"histograms,omitempty"`    // kind -> base64 HdrHistogram V2 compressed (values in µs)
	Warnings     []string          `json:"warnings,omitempty"`
	Error        string            `json:"error,omitempty"`
	Aborted      *Abort            `json:"aborted,omitempty"` // an abort gate ended the variant early
	Worker       *WorkerInfo       `json:"worker,omitempty"`  // what ran as the workers
	Agents       []Agent           `json:"agents,omitempty"`  // the hosts of a run placed on agents (placement)

	// The baseline comparison's inputs (issue 19), kept together.
	//
	// WorkerCPUSeconds is the user+system CPU time of the worker processes
	// from the load start to the end of the drain, summed over processes
	// (respawned ones included); 0 when not measured.
	WorkerCPUSeconds float64 `json:"worker_cpu_seconds,omitempty"`
	// RunnerCPUSeconds is the user+system CPU time of the runner's own
	// process (the load generator, the ledger, telemetry, the sampler) over
	// the same window: the harness's cost on the machine it measures.
	RunnerCPUSeconds float64 `json:"runner_cpu_seconds,omitempty"`
	// BrokerStats says where queue_unacked (and broker_memory_bytes) came
	// from: BrokerStatsManagement (the broker's own counts, from its
	// management API) or BrokerStatsDerived (confirmed jobs without an
	// outcome, minus those ready or in retry tiers; no broker memory).
	BrokerStats string `json:"broker_stats,omitempty"`
	// Calibration is the broker+machine's raw capacity, measured just before
	// the load; nil when not measured.
	Calibration *Calibration `json:"calibration,omitempty"`
	// Runs holds every run's value of every metric of the metric table (metric
	// name -> one value per run, in run order, base units) when the result
	// combines repeated runs; the variant's other figures are then medians.
	Runs map[string][]float64 `json:"runs,omitempty"`

	// SLO is the variant's verdict against the scenario's SLO: separate from
	// the gates, a miss does not fail the run. nil without an SLO.
	SLO *SLOVerdict `json:"slo,omitempty"`
	// Search is the variant's max-rate search (search: or --max-rate).
	Search *Search `json:"search,omitempty"`
}

// Worker modes.
const (
	ModeSimulated = "simulated" // bench worker: the simulated job on the runtime
	ModeWhiteBox  = "white-box" // workers.command built on the runtime: it reports every outcome
	ModeBlackBox  = "black-box" // workers.command seen from outside, through its completion events
)

// WorkerInfo says what ran as the workers of a variant.
type WorkerInfo struct {
	Mode    string   `json:"mode"`              // ModeSimulated, ModeWhiteBox or ModeBlackBox
	Command []string `json:"command,omitempty"` // workers.command, as written
	// Processes are the worker processes that reported over telemetry, in
	// the order they said hello (a respawned one again), each with the
	// runtime settings in force as it reported them.
	Processes []WorkerProcess `json:"processes,omitempty"`
}

// WorkerProcess is one worker process as it introduced itself.
type WorkerProcess struct {
	Index    int             `json:"index"`
	PID      int             `json:"pid"`
	Settings json.RawMessage `json:"settings,omitempty"`
}

// Abort is why an abort gate ended a variant before its load and drain were done.
type Abort struct {
	Gate    string  `json:"gate"`    // the expression
	Value   float64 `json:"value"`   // the metric when it failed, in its base unit
	Display string  `json:"display"` // the same in the gate's unit
	AtS     float64 `json:"at_s"`    // seconds since the load started
	Reason  string  `json:"reason"`  // for people: what failed and what was skipped
}

// Calibration is a short raw publish and consume of the broker the variant
// ran against, before its load: how fast this broker on this machine moves
// messages at all, the yardstick for comparing throughput across machines.
type Calibration struct {
	Messages    int64   `json:"messages"`
	Size        int     `json:"size"`
	PublishPerS float64 `json:"publish_per_s"`
	ConsumePerS float64 `json:"consume_per_s"`
	Seconds     float64 `json:"seconds"`
}

// Ledger is every job's fate, counted exactly.
type Ledger struct {
	Published     int64 `json:"published"`
	Confirmed     int64 `json:"confirmed"`
	Unconfirmed   int64 `json:"unconfirmed"`
	Succeeded     int64 `json:"succeeded"`
	Recovered     int64 `json:"recovered"`
	DeadLettered  int64 `json:"dead_lettered"`
	Lost          int64 `json:"lost"`
	Duplicates    int64 `json:"duplicates"`
	Redelivered   int64 `json:"redelivered"`
	Retries       int64 `json:"retries"`
	TIDMismatches int64 `json:"tid_mismatches"`

	Emitted  int64 `json:"emitted,omitempty"`  // events emitted by the job and seen by the runner
	Finished int64 `json:"finished,omitempty"` // distinct jobs with a final outcome (each counted once)

	// Unobserved names the counts this variant's mode cannot see
	// ("retries", "redelivered" of a black-box worker): they are null in
	// result.json, "n/a" in the report, and a gate on them cannot pass.
	Unobserved []string `json:"unobserved,omitempty"`
}

// Observed reports whether the count name (a result.json ledger key) was seen.
func (l Ledger) Observed(name string) bool { return !slices.Contains(l.Unobserved, name) }

// MarshalJSON writes an unobserved count as null, never 0.
func (l Ledger) MarshalJSON() ([]byte, error) {
	type plain Ledger
	// The outer fields hide the embedded ones of the same JSON name.
	out := struct {
		plain
		Redelivered *int64 `json:"redelivered"`
		Retries     *int64 `json:"retries"`
	}{plain: plain(l)}
	if l.Observed("redelivered") {
		out.Redelivered = &l.Redelivered
	}
	if l.Observed("retries") {
		out.Retries = &l.Retries
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a null count as unobserved.
func (l *Ledger) UnmarshalJSON(data []byte) error {
	type plain Ledger
	var in struct {
		plain
		Redelivered *int64 `json:"redelivered"`
		Retries     *int64 `json:"retries"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*l = Ledger(in.plain)
	for name, v := range map[string]*int64{"redelivered": in.Redelivered, "retries": in.Retries} {
		switch {
		case v != nil && name == "redelivered":
			l.Redelivered = *v
		case v != nil:
			l.Retries = *v
		case !slices.Contains(l.Unobserved, name):
			l.Unobserved = append(l.Unobserved, name)
		}
	}
	slices.Sort(l.Unobserved)
	return nil
}

// Latencies holds the summaries of each latency kind, in milliseconds.
type Latencies struct {
	EndToEnd       Summary `json:"end_to_end"`
	PublishConfirm Summary `json:"publish_confirm"`
	Processing     Summary `json:"processing"`
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Sources of Variant.BrokerStats.
const (
	BrokerStatsManagement = "management"
	BrokerStatsDerived    = "derived"
)

// Lateness is how late the load generator sent its steady and ramp jobs
// after their intended times: the summary in ms over those sends, and how
// many were later than the threshold (the harness's own accuracy; spike jobs
// are all due at once and left out).
type Lateness struct {
	Summary
	ThresholdMS  float64 `json:"threshold_ms"`
	Late         int64   `json:"late"`
	LateFraction float64 `json:"late_fraction"`
}

// Throughput is the mean rate over the variant's active time.
type Throughput struct {
	PublishPerS  float64 `json:"publish_per_s"`
	CompletePerS float64 `json:"complete_per_s"`
}

// Peak holds maxima over the variant's samples.
type Peak struct {
	WorkerRSSBytes   int64 `json:"worker_rss_bytes"`
	WorkerHeapBytes  int64 `json:"worker_heap_bytes"`
	QueueReady       int64 `json:"queue_ready"`
	QueueUnacked     int64 `json:"queue_unacked"`
	WorkerInflight   int64 `json:"worker_inflight"`
	QueueRetry       int64 `json:"queue_retry,omitempty"`
	QueueDead        int64 `json:"queue_dead,omitempty"`
	WorkerGoroutines int64 `json:"worker_goroutines,omitempty"`
	// WorkerCPUCores is the busiest worker process's CPU use over a sample
	// interval, in cores: what one instance of this configuration needs.
	WorkerCPUCores float64 `json:"worker_cpu_cores,omitempty"`
}

// Breaker summarises circuit breaker activity over all worker processes.
type Breaker struct {
	Opened      int64   `json:"opened"`
	OpenSeconds float64 `json:"open_seconds"`
}

// Fault is one applied fault with its real start and end, relative to the load start.
type Fault struct {
	AtS    float64 `json:"at_s"`
	UntilS float64 `json:"until_s"`
	Target string  `json:"target"`
	Kind   string  `json:"kind"`
	// RecoverySeconds is from the fault's end until the completion rate was
	// back to normal; null when that was not reached or could not be
	// observed, and RecoveryNote says which.
	RecoverySeconds *float64 `json:"recovery_seconds"`
	RecoveryNote    string   `json:"recovery_note,omitempty"`

	// DetectSeconds is from the fault's start to the first failed attempt or
	// breaker opening; null when none was seen, and DetectNote says so.
	DetectSeconds *float64 `json:"detect_seconds"`
	DetectNote    string   `json:"detect_note,omitempty"`
	BacklogPeak   int64    `json:"backlog_peak,omitempty"` // highest queue_ready during the fault and its recovery
	LostDuring    bool     `json:"lost_during,omitempty"`  // whether the variant lost jobs (lost > 0)
	Error         string   `json:"error,omitempty"`        // the fault could not be applied
	Detail        string   `json:"detail,omitempty"`       // e.g. "latency=1s stream=down"

	// How the fault hit the clients, over its window: from at_s to the next
	// fault's start, or the end of the drain (docs/results.md).
	// Node is the cluster node the fault acted on (node: leader and any as
	// they were resolved); absent when the fault named none.
	Node int `json:"node,omitempty"`
	// LeaderSeconds, ConsumeSeconds and ConfirmSeconds run from at_s until
	// the job's queue had a leader again (a quorum queue on a cluster only),
	// every worker consumed again, and the generator's confirms flowed again,
	// each for the rest of the window; 0 when it never stopped; null when it
	// did not come back within the window, and ClientNote says which.
	LeaderSeconds  *float64 `json:"leader_seconds,omitempty"`
	ConsumeSeconds *float64 `json:"consume_seconds"`
	ConfirmSeconds *float64 `json:"confirm_seconds"`
	ClientNote     string   `json:"client_note,omitempty"`
	WindowEndS     float64  `json:"window_end_s"`
	// Jobs published in the window that were lost (confirmed, no final
	// outcome) or never confirmed, and the duplicates and redeliveries seen
	// in it.
	Lost        int64 `json:"lost"`
	Unconfirmed int64 `json:"unconfirmed"`
	// DeletedMessages are the ready messages a delete_queue took with the
	// queue: jobs the operator, not the worker, lost.
	DeletedMessages int64 `json:"deleted_messages,omitempty"`
	Duplicates      int64 `json:"duplicates"`
	Redelivered     int64 `json:"redelivered"`
}

// Notes on figures an older bench wrote as -1.
const (
	legacyRecoveryNote = "not recovered (written as -1 by an older bench)"
	legacyDetectNote   = "not seen (written as -1 by an older bench)"
)

// UnmarshalJSON reads a fault, turning the -1 that older results wrote for
// "not reached" into null with a note.
func (f *Fault) UnmarshalJSON(data []byte) error {
	type plain Fault
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	if p.RecoverySeconds != nil && *p.RecoverySeconds < 0 {
		p.RecoverySeconds = nil
		if p.RecoveryNote == "" {
			p.RecoveryNote = legacyRecoveryNote
		}
	}
	if p.DetectSeconds != nil && *p.DetectSeconds < 0 {
		p.DetectSeconds = nil
		if p.DetectNote == "" {
			p.DetectNote = legacyDetectNote
		}
	}
	*f = Fault(p)
	return nil
}

// Gate is one evaluated gate expression.
type Gate struct {
	Expr   string  `json:"expr"`
	Passed bool    `json:"passed"`
	Value  float64 `json:"value"`
	Error  string  `json:"error,omitempty"` // the metric was not measured in this variant

	Display string `json:"display,omitempty"` // Value in the gate's unit, e.g. "21.8MiB" or "8.262s"
	// Skipped: the gate was not evaluated (Passed is false), for Reason: a
	// --set pinned a matrix key its when names to another value, or the
	// variant was aborted before the metric was known.
	Skipped bool   `json:"skipped,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Abort   bool   `json:"abort,omitempty"` // an abort gate: checked during the run as well
}

// ReadFile reads and checks a result.json.
func ReadFile(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse result %s: %w", path, err)
	}
	if r.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("parse result %s: schema_version %d, want %d", path, r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}

// WriteFile writes r as indented JSON, atomically (temp file + rename).
func WriteFile(path string, r *Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}
