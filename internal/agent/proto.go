// Package agent is the protocol between `bench run` and `bench agent`
// processes on other hosts: versioned JSON messages over a control exchange
// on the broker the run uses. Agents need no inbound port: each consumes an
// exclusive queue of its own bound to the exchange, and the runner one of its
// own, addressed through the default exchange. See docs/agents.md.
package agent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/benchmq/bench/internal/loadgen"
)

// Version is the protocol version every message carries. A peer drops (and
// logs) a message of another version.
const Version = 1

// Exchange is the control exchange (topic): the runner broadcasts on KeyAll
// and addresses one agent on AgentKey(name).
const Exchange = "bench.control"

// KeyAll reaches every agent.
const KeyAll = "agents.all"

// AgentKey reaches the agent called name.
func AgentKey(name string) string { return "agents.name." + name }

// Message types. "→agent" ones are sent by the runner, "→runner" ones by an agent.
const (
	TypeDiscover  = "discover"   // →agent, broadcast: who is there? (reply: hello)
	TypeHello     = "hello"      // →runner: name, labels, busy
	TypePing      = "ping"       // →agent: clock probe
	TypePong      = "pong"       // →runner: the probe's times
	TypeAssign    = "assign"     // →agent: a part of a run (workers, a generator shard)
	TypeAssigned  = "assigned"   // →runner: the part started (or why not)
	TypeStart     = "start"      // →agent: start the generator shard at a time
	TypeEvents    = "events"     // →runner: a batch of telemetry and generator events
	TypeGenDone   = "gen_done"   // →runner: the shard's generator finished
	TypeFault     = "fault"      // →agent: kill, stop or pause one worker process; resume a paused one
	TypeFaultDone = "fault_done" // →runner: the fault's result
	TypeHeartbeat = "heartbeat"  // both ways while a part runs
	TypeExited    = "exited"     // →runner: a worker process exited on its own
	TypeRelease   = "release"    // →agent: stop the part (workers get SIGTERM), flush, report
	TypeReleased  = "released"   // →runner: the part is gone; every event was sent before this
)

// Msg is the envelope of every message.
type Msg struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	Run  string          `json:"run,omitempty"`  // the run the message belongs to ("" for discovery replies)
	From string          `json:"from"`           // the sender: an agent's name, or "runner"
	Body json.RawMessage `json:"body,omitempty"` // one of the types below, by Type
}

// NewMsg builds a message with body encoded as JSON.
func NewMsg(typ, run, from string, body any) (Msg, error) {
	m := Msg{V: Version, Type: typ, Run: run, From: from}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return m, fmt.Errorf("encode %s: %w", typ, err)
		}
		m.Body = b
	}
	return m, nil
}

// Decode reads the message's body into v.
func (m Msg) Decode(v any) error {
	if len(m.Body) == 0 {
		return nil
	}
	if err := json.Unmarshal(m.Body, v); err != nil {
		return fmt.Errorf("decode %s from %s: %w", m.Type, m.From, err)
	}
	return nil
}

// Discover asks agents to say hello to ReplyTo.
type Discover struct {
	ReplyTo string `json:"reply_to"`
}

// Hello introduces an agent.
type Hello struct {
	Name    string            `json:"name"`
	Host    string            `json:"host"`
	Labels  map[string]string `json:"labels,omitempty"`
	PID     int               `json:"pid"`
	Version string            `json:"version"`        // the agent's bench version
	Busy    string            `json:"busy,omitempty"` // the run it serves, if any
}

// Ping is a clock probe: T0 is the runner's clock when it was sent.
type Ping struct {
	T0 int64 `json:"t0"`
}

// Pong answers a Ping: T1 when the agent received it and T2 when it
// answered, on the agent's clock (Unix ns).
type Pong struct {
	T0 int64 `json:"t0"`
	T1 int64 `json:"t1"`
	T2 int64 `json:"t2"`
}

// Assign hands an agent its part of a run. ReplyTo is the runner's queue.
type Assign struct {
	ReplyTo   string     `json:"reply_to"`
	Workers   *Workers   `json:"workers,omitempty"`
	Generator *Generator `json:"generator,omitempty"`
}

// Workers are the worker processes an agent runs: `bench worker` with
// Config (the simulated worker's config, without the broker URL: the agent
// uses its own), one per index in Indices (run-wide worker indices).
type Workers struct {
	Config  json.RawMessage `json:"config"`
	Indices []int           `json:"indices"`
	// Dependency is the simulated dependency the agent starts beside its
	// workers when the job calls one.
	Dependency *Dependency `json:"dependency,omitempty"`
}

// Dependency configures the agent's simulated dependency.
type Dependency struct {
	Latency   time.Duration `json:"latency"`
	Jitter    time.Duration `json:"jitter"`
	ErrorRate float64       `json:"error_rate"`
	Seed      int64         `json:"seed"`
}

// Generator is one shard of the load: the phases at the agent's share of
// the rate, its jobs numbered from FirstSeq.
type Generator struct {
	Exchange   string          `json:"exchange"`
	RoutingKey string          `json:"routing_key"`
	Phases     []loadgen.Phase `json:"phases"`
	RunID      string          `json:"run_id"`
	FirstSeq   int64           `json:"first_seq"`
	Jobs       int64           `json:"jobs"`
}

// Assigned answers an Assign.
type Assigned struct {
	Error string `json:"error,omitempty"`
}

// Start starts the generator shard at At, on the agent's clock (Unix ns):
// the runner has already applied the agent's clock offset.
type Start struct {
	At int64 `json:"at"`
}

// Events carries a batch of encoded events (see Encoder), in order.
type Events struct {
	Batch uint64 `json:"batch"` // from 1, per part; a gap means a lost batch
	Data  []byte `json:"data"`
}

// GenDone is a generator shard's result.
type GenDone struct {
	Stats              loadgen.Stats `json:"stats"`
	ConfirmLatency     string        `json:"confirm_latency"` // report.EncodeHistogram
	FirstSend          int64         `json:"first_send"`      // agent clock, Unix ns; 0 if nothing was sent
	LastSend           int64         `json:"last_send"`
	PublishedPerSecond []int64       `json:"published_per_second"`
	PhaseStarts        []int64       `json:"phase_starts_ns"`
	Error              string        `json:"error,omitempty"`
}

// Fault actions.
const (
	FaultKill   = "kill"
	FaultStop   = "stop"
	FaultPause  = "pause"
	FaultResume = "resume"
)

// Fault acts on one of the agent's worker processes. ID names a pause so
// that its resume finds it.
type Fault struct {
	ID     int64  `json:"id"`
	Action string `json:"action"`
}

// FaultDone answers a Fault.
type FaultDone struct {
	ID    int64  `json:"id"`
	Error string `json:"error,omitempty"`
}

// Exited reports a worker process that exited on its own.
type Exited struct {
	Error string `json:"error"`
}

// Released answers a Release: the last batch number sent.
type Released struct {
	LastBatch uint64 `json:"last_batch"`
}
