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
)

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
	Doc     string
}

var actions = []Action{
	{ActionRestart, TargetBroker, Instant, "stop the node cleanly and start it again (a rolling upgrade)"},
	{ActionKill, TargetBroker, Optional, "SIGKILL the node (a crash); start it again after `for`, or at once"},
	{ActionStop, TargetBroker, Optional, "stop the node cleanly (a planned outage); start it again after `for`, or at once"},
	{ActionBlock, TargetBroker, Required, "raise a memory alarm: publishers are blocked for `for`"},
	{ActionKill, TargetWorker, Instant, "SIGKILL one worker process (an OOM kill); it is respawned"},
	{ActionStop, TargetWorker, Instant, "SIGTERM one worker process (a deploy); it is respawned"},
	{ActionPause, TargetWorker, Required, "SIGSTOP one worker process for `for` (a long GC pause), then SIGCONT"},
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
