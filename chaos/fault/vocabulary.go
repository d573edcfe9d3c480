// Package fault is the vocabulary of bench's faults: the targets, the actions
// each target takes, the Toxiproxy toxics with their attributes and units, and
// the rules one fault obeys (Spec.Validate) and a timeline of them obeys
// (Overlaps). It depends on nothing else in bench, so that the scenario parser,
// the fault timeline (chaos/timeline) and the proxies (chaos/proxy) read one
// table: a fault that validates is a fault that runs.
package fault

import (
	"slices"
	"time"
)

// Targets of a fault.
const (
	TargetDependency = "dependency" // the proxy in front of the (simulated) dependency
	TargetBroker     = "broker"     // the proxies between the broker and its clients, or the node itself
	TargetWorker     = "worker"     // one worker process
)

// TargetNames returns the targets in documentation order.
func TargetNames() []string { return []string{TargetDependency, TargetBroker, TargetWorker} }

// Action names.
const (
	ActionRestart = "restart" // broker: stop cleanly and start again
	ActionKill    = "kill"    // broker: SIGKILL the node, start it after For; worker: SIGKILL one process
	ActionStop    = "stop"    // broker: stop cleanly, start after For; worker: SIGTERM one process
	ActionBlock   = "block"   // broker: memory alarm, publishers blocked for For
	ActionPause   = "pause"   // worker: SIGSTOP one process for For

	// Cluster and topology actions of the broker.
	ActionPartition        = "partition"         // split the cluster's nodes into groups for For
	ActionDeleteQueue      = "delete_queue"      // delete a queue of the run (Queue)
	ActionCloseConnections = "close_connections" // close every client connection
	ActionCancelConsumers  = "cancel_consumers"  // basic.cancel to a queue's consumers
	ActionMemoryAlarm      = "memory_alarm"      // a memory alarm for For
	ActionDiskAlarm        = "disk_alarm"        // a disk alarm for For
)

// Node picks the node of a cluster a broker fault acts on: a number from 1,
// or one of these.
const (
	NodeLeader   = "leader"   // the node leading the job's queue when the fault starts
	NodeFollower = "follower" // a node that does not lead it, picked at random (from the seed)
	NodeAny      = "any"      // a node picked at random (from the scenario's seed)
)

// Queue roles a topology fault's Queue may name; any other value is a queue's
// own name.
const (
	QueueJob   = "job"   // the job's queue
	QueueRetry = "retry" // the first (shortest) retry tier of the job's queue
	QueueDead  = "dead"  // the job's dead-letter queue
)

// MaxNodes bounds a node number: a typo catcher, not a limit of RabbitMQ's.
const MaxNodes = 9

// Lasting says how a fault relates to time: whether it takes a `for`.
type Lasting int

const (
	// Instant faults are over when they return; a `for` is an error.
	Instant Lasting = iota
	// Optional faults may last: `for` is how long until they are undone
	// (a killed node's downtime); without one they are undone at once.
	Optional
	// Required faults need a `for`.
	Required
	// Brief faults without a `for` stay for BriefWindow.
	Brief
)

// BriefWindow is how long a Brief fault without `for` stays in place: long
// enough to catch the traffic of a busy connection, short enough to be a blip.
const BriefWindow = time.Second

// Action is what a target can be made to do.
type Action struct {
	Name    string
	Target  string
	Lasting Lasting
	// Takes says which of the keys node, nodes and queue the action takes.
	Takes Keys
	Doc   string
}

// Keys are the optional keys of a broker action.
type Keys int

const (
	// TakesNode: node picks the cluster node it acts on (default: every
	// node's proxies, or for a node action node 1).
	TakesNode Keys = 1 << iota
	// NeedsNodes: nodes, the partition's groups, is required.
	NeedsNodes
	// TakesQueue: queue names the queue it acts on (default: job).
	TakesQueue
	// NeedsQueue: queue is required.
	NeedsQueue
)

var actions = []Action{
	{ActionRestart, TargetBroker, Instant, TakesNode, "stop the node cleanly and start it again (a rolling upgrade)"},
	{ActionKill, TargetBroker, Optional, TakesNode, "SIGKILL the node (a crash); start it again after `for`, or at once"},
	{ActionStop, TargetBroker, Optional, TakesNode, "stop the node cleanly (a planned outage); start it again after `for`, or at once"},
	{ActionBlock, TargetBroker, Required, TakesNode, "raise a memory alarm: publishers are blocked for `for` (the same as memory_alarm)"},
	{ActionPartition, TargetBroker, Required, NeedsNodes, "split the cluster's nodes into groups (`nodes`) that cannot reach each other, for `for`"},
	{ActionDeleteQueue, TargetBroker, Instant, NeedsQueue, "delete a queue (`queue`: job, retry, dead or a name) under the running workers"},
	{ActionCloseConnections, TargetBroker, Instant, 0, "close every client connection, as an operator (or a load balancer) would"},
	{ActionCancelConsumers, TargetBroker, Instant, TakesQueue, "make the broker send basic.cancel to a queue's consumers (`queue`, default job) without deleting it"},
	{ActionMemoryAlarm, TargetBroker, Required, TakesNode, "raise a memory alarm (on `node`, default the first running one) for `for`: publishers block"},
	{ActionDiskAlarm, TargetBroker, Required, TakesNode, "raise a disk alarm (on `node`, default the first running one) for `for`: publishers block"},
	{ActionKill, TargetWorker, Instant, 0, "SIGKILL one worker process (an OOM kill); it is respawned"},
	{ActionStop, TargetWorker, Instant, 0, "SIGTERM one worker process (a deploy); it is respawned"},
	{ActionPause, TargetWorker, Required, 0, "SIGSTOP one worker process for `for` (a long GC pause), then SIGCONT"},
}

// LookupAction returns the action name of target, if it has one.
func LookupAction(target, name string) (Action, bool) {
	for _, a := range actions {
		if a.Target == target && a.Name == name {
			return a, true
		}
	}
	return Action{}, false
}

// ActionNames returns the actions target takes, in documentation order.
func ActionNames(target string) []string {
	var out []string
	for _, a := range actions {
		if a.Target == target {
			out = append(out, a.Name)
		}
	}
	return out
}

// Actions returns every action of every target.
func Actions() []Action { return slices.Clone(actions) }

// Streams a toxic applies to.
const (
	StreamDown = "down" // upstream → client (Toxiproxy's default)
	StreamUp   = "up"   // client → upstream
	StreamBoth = "both" // one toxic per direction
)

// StreamNames returns the streams, the default first.
func StreamNames() []string { return []string{StreamDown, StreamUp, StreamBoth} }

// Unit is the unit in which Toxiproxy takes a toxic attribute, and so the one
// a Spec's Attrs hold.
type Unit int

const (
	Millis Unit = iota // a duration in milliseconds
	Micros             // a duration in microseconds
	Bytes              // a size in bytes
	KBps               // a bandwidth in KB/s (1 KB = 1000 bytes)
)

// Duration returns the duration of one unit, or 0 for units that are not durations.
func (u Unit) Duration() time.Duration {
	switch u {
	case Millis:
		return time.Millisecond
	case Micros:
		return time.Microsecond
	}
	return 0
}

// Attr is one attribute of a toxic.
type Attr struct {
	Name     string
	Unit     Unit
	Required bool // without it the toxic does nothing
}

// Toxic is a Toxiproxy toxic type.
type Toxic struct {
	Name    string
	Attrs   []Attr
	Lasting Lasting // Required or Brief
	Doc     string
}

var toxics = []Toxic{
	{"latency", []Attr{{"latency", Millis, true}, {"jitter", Millis, false}}, Required, "delays the data"},
	{"bandwidth", []Attr{{"rate", KBps, true}}, Required, "limits the bandwidth"},
	{"slow_close", []Attr{{"delay", Millis, true}}, Required, "delays the close of a connection"},
	{"timeout", []Attr{{"timeout", Millis, false}}, Brief, "stops all data; closes after timeout (0: never, a blackhole)"},
	{"reset_peer", []Attr{{"timeout", Millis, false}}, Brief, "resets the connection (after timeout, or at the first data)"},
	{"slicer", []Attr{{"average_size", Bytes, true}, {"size_variation", Bytes, false}, {"delay", Micros, false}}, Required, "slices the data into small packets"},
	{"limit_data", []Attr{{"bytes", Bytes, true}}, Required, "closes the connection after bytes"},
}

// LookupToxic returns the toxic type name.
func LookupToxic(name string) (Toxic, bool) {
	for _, t := range toxics {
		if t.Name == name {
			return t, true
		}
	}
	return Toxic{}, false
}

// ToxicNames returns the toxic types, sorted.
func ToxicNames() []string {
	out := make([]string, len(toxics))
	for i, t := range toxics {
		out[i] = t.Name
	}
	slices.Sort(out)
	return out
}

// Attr returns the attribute name of t.
func (t Toxic) Attr(name string) (Attr, bool) {
	for _, a := range t.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	return Attr{}, false
}

// AttrNames returns the names of t's attributes, in table order.
func (t Toxic) AttrNames() []string {
	out := make([]string, len(t.Attrs))
	for i, a := range t.Attrs {
		out[i] = a.Name
	}
	return out
}

// AttrNames returns the attribute names of every toxic, each once, in table order.
func AttrNames() []string {
	var out []string
	for _, t := range toxics {
		for _, a := range t.Attrs {
			if !slices.Contains(out, a.Name) {
				out = append(out, a.Name)
			}
		}
	}
	return out
}
