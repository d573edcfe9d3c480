package fault

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Spec is one entry of a scenario's faults: list (DESIGN §4.2). Exactly one
// of Toxic, Down and Action is set.
type Spec struct {
	At  time.Duration // since the load started
	For time.Duration // how long it lasts; 0 for instant faults, and Brief ones hold BriefWindow
	// Target is TargetDependency, TargetBroker or TargetWorker.
	Target string
	// Name picks one of several targets of a kind: for TargetDependency, a
	// named real dependency of the user's worker; "" is the simulated one.
	Name string
	// Toxic is a toxic type (see ToxicNames) put on the target's proxies.
	Toxic string
	// Stream is StreamDown, StreamUp or StreamBoth; "" means StreamDown.
	Stream string
	// Toxicity is the share of connections affected, in [0, 1]; 0 means 1.
	Toxicity float64
	// Attrs are the toxic's attributes in their Unit (Toxiproxy's).
	Attrs map[string]int64
	// Down takes the target's proxies down: connections are cut and refused.
	Down bool
	// Action is one of ActionNames(Target).
	Action string
	// Node picks a node of a cluster: "" (see TakesNode), a number from 1,
	// NodeLeader or NodeAny. It applies to the broker's node actions and to
	// broker toxics and down (the proxies in front of that node).
	Node string
	// Groups are a partition's groups of nodes (ActionPartition).
	Groups [][]int
	// Queue is the queue a topology action acts on: QueueJob, QueueRetry,
	// QueueDead or a queue's name.
	Queue string
}

// Problem is one thing wrong with a Spec. Field is the scenario key it is
// about ("toxic", "for", "latency", ...), or "" for the fault as a whole, so
// that a parser can point at the right line; Msg reads on its own.
type Problem struct {
	Field string
	Msg   string
}

func (p *Problem) Error() string { return p.Msg }

// Kind names what the fault does: the toxic, "down", or the action.
func (s Spec) Kind() string {
	switch {
	case s.Toxic != "":
		return s.Toxic
	case s.Down:
		return "down"
	}
	return s.Action
}

// Lasting is how the fault relates to time; Instant for an invalid spec.
func (s Spec) Lasting() Lasting {
	switch {
	case s.Toxic != "":
		if t, ok := LookupToxic(s.Toxic); ok {
			return t.Lasting
		}
	case s.Down:
		return Brief
	default:
		if a, ok := LookupAction(s.Target, s.Action); ok {
			return a.Lasting
		}
	}
	return Instant
}

// Hold is how long the fault stays before it is undone.
func (s Spec) Hold() time.Duration {
	if s.For == 0 && s.Lasting() == Brief {
		return BriefWindow
	}
	return s.For
}

// NeedsProxy reports whether the fault acts through the target's proxies.
func (s Spec) NeedsProxy() bool { return s.Toxic != "" || s.Down }

// NeedsManagedBroker reports whether the fault acts on the broker node itself
// (delete_queue works on any broker: it is an AMQP command).
func (s Spec) NeedsManagedBroker() bool {
	return s.Target == TargetBroker && s.Action != "" && s.Action != ActionDeleteQueue
}

// GroupsString writes a partition's groups as a scenario would: [[1] [2 3]]
// as "[1]|[2,3]".
func GroupsString(groups [][]int) string {
	parts := make([]string, len(groups))
	for i, g := range groups {
		ns := make([]string, len(g))
		for j, n := range g {
			ns[j] = strconv.Itoa(n)
		}
		parts[i] = "[" + strings.Join(ns, ",") + "]"
	}
	return strings.Join(parts, "|")
}

// Validate reports every problem with s at once (Problems, joined).
func (s Spec) Validate() error {
	var errs []error
	for _, p := range s.Problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// Problems returns every problem with s; none when it is valid.
func (s Spec) Problems() []*Problem {
	var ps []*Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, &Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.At < 0 {
		add("at", "at %s is negative", s.At)
	}
	if s.For < 0 {
		add("for", "for %s is negative", s.For)
	}
	if !slices.Contains(TargetNames(), s.Target) {
		add("target", "target must be one of %s, got %q", strings.Join(TargetNames(), ", "), s.Target)
	}
	if s.Name != "" && s.Target != TargetDependency && slices.Contains(TargetNames(), s.Target) {
		add("name", "name picks a dependency: it applies to target %s only", TargetDependency)
	}
	set := 0
	for _, b := range []bool{s.Toxic != "", s.Down, s.Action != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		add("", "needs exactly one of toxic, down: true or action")
		return ps
	}
	switch {
	case s.Toxic != "":
		ps = append(ps, s.toxicProblems()...)
	case s.Down:
		if s.Target == TargetWorker {
			add("down", "a worker takes an action (%s), not down", strings.Join(ActionNames(TargetWorker), ", "))
		}
	default:
		if s.Target == TargetDependency {
			add("action", "the dependency takes a toxic or down: true, not an action")
		} else if _, ok := LookupAction(s.Target, s.Action); !ok && s.Target != "" && slices.Contains(TargetNames(), s.Target) {
			add("action", "action must be one of %s for target %s, got %q", strings.Join(ActionNames(s.Target), ", "), s.Target, s.Action)
		}
	}
	ps = append(ps, s.clusterProblems()...)
	if s.Toxic == "" {
		if s.Stream != "" {
			add("stream", "stream applies to toxics only")
		}
		if s.Toxicity != 0 {
			add("toxicity", "toxicity applies to toxics only")
		}
		for _, k := range sortedKeys(s.Attrs) {
			add(k, "%s applies to toxics only", k)
		}
	}
	switch s.Lasting() {
	case Instant:
		if s.For != 0 && s.Action != "" {
			add("for", "action %s of the %s is instantaneous: remove for", s.Action, s.Target)
		}
	case Required:
		if s.For == 0 {
			add("", "missing for (how long the %s lasts)", s.Kind())
		}
	}
	return ps
}

// clusterProblems checks node, nodes and queue against the action.
func (s Spec) clusterProblems() []*Problem {
	var ps []*Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, &Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	var takes Keys
	if a, ok := LookupAction(s.Target, s.Action); ok {
		takes = a.Takes
	} else if s.Target == TargetBroker && s.Action == "" {
		takes = TakesNode // the proxies in front of one node
	}
	if s.Node != "" {
		if takes&TakesNode == 0 {
			add("node", "node applies to the broker's toxics, down and actions %s", strings.Join(actionsTaking(TakesNode), ", "))
		} else if _, err := ParseNode(s.Node); err != nil {
			add("node", "%v", err)
		}
	}
	switch {
	case s.Groups != nil && takes&NeedsNodes == 0:
		add("nodes", "nodes applies to action %s only", ActionPartition)
	case takes&NeedsNodes != 0 && s.Groups == nil:
		add("", "missing nodes (the partition's groups, e.g. [[1], [2, 3]])")
	case takes&NeedsNodes != 0:
		if err := CheckGroups(s.Groups, 0); err != nil {
			add("nodes", "%v", err)
		}
	}
	switch {
	case s.Queue != "" && takes&(TakesQueue|NeedsQueue) == 0:
		add("queue", "queue applies to actions %s only", strings.Join(actionsTaking(TakesQueue|NeedsQueue), ", "))
	case takes&NeedsQueue != 0 && s.Queue == "":
		add("", "missing queue (%s, %s, %s or a queue's name)", QueueJob, QueueRetry, QueueDead)
	}
	return ps
}

// actionsTaking lists the broker actions that take any of keys.
func actionsTaking(keys Keys) []string {
	var out []string
	for _, a := range actions {
		if a.Target == TargetBroker && a.Takes&keys != 0 {
			out = append(out, a.Name)
		}
	}
	return out
}

// ParseNode reads a node: a number from 1 to MaxNodes, or NodeLeader,
// NodeFollower or NodeAny (0 is returned for those).
func ParseNode(v string) (int, error) {
	if v == NodeLeader || v == NodeFollower || v == NodeAny {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxNodes {
		return 0, fmt.Errorf("node must be a number from 1 to %d, %s, %s or %s, got %q", MaxNodes, NodeLeader, NodeFollower, NodeAny, v)
	}
	return n, nil
}

// CheckGroups checks a partition's groups: at least two, none empty, nodes
// from 1, each in one group only. With size > 0 every node of 1..size must be
// in a group and none above it.
func CheckGroups(groups [][]int, size int) error {
	if len(groups) < 2 {
		return fmt.Errorf("a partition needs at least two groups of nodes, got %d", len(groups))
	}
	seen := map[int]bool{}
	for gi, g := range groups {
		if len(g) == 0 {
			return fmt.Errorf("group %d is empty", gi+1)
		}
		for _, n := range g {
			switch {
			case n < 1 || n > MaxNodes:
				return fmt.Errorf("node %d: nodes are numbered from 1 to %d", n, MaxNodes)
			case size > 0 && n > size:
				return fmt.Errorf("node %d: the cluster has nodes 1 to %d", n, size)
			case seen[n]:
				return fmt.Errorf("node %d is in two groups", n)
			}
			seen[n] = true
		}
	}
	for n := 1; n <= size; n++ {
		if !seen[n] {
			return fmt.Errorf("node %d is in no group: every node of the cluster must be in one", n)
		}
	}
	return nil
}

// CheckCluster reports what is wrong with s on a broker of size nodes (1 for
// a single node): a node number beyond it, a partition of a single node or
// one that leaves out a node.
func (s Spec) CheckCluster(size int) []*Problem {
	var ps []*Problem
	if n, err := ParseNode(s.Node); s.Node != "" && err == nil && n > size {
		ps = append(ps, &Problem{Field: "node", Msg: fmt.Sprintf("node %d: the broker has %d node(s) (broker.nodes)", n, size)})
	}
	if s.Node == NodeFollower && size < 2 {
		ps = append(ps, &Problem{Field: "node", Msg: "node follower needs a cluster (broker.nodes of 2 or more)"})
	}
	if s.Action == ActionPartition && s.Target == TargetBroker {
		if size < 2 {
			ps = append(ps, &Problem{Field: "action", Msg: "a partition needs a cluster (broker.nodes of 2 or more)"})
		} else if s.Groups != nil {
			if err := CheckGroups(s.Groups, size); err != nil {
				ps = append(ps, &Problem{Field: "nodes", Msg: err.Error()})
			}
		}
	}
	return ps
}

func (s Spec) toxicProblems() []*Problem {
	var ps []*Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, &Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Target == TargetWorker {
		add("toxic", "a worker takes an action (%s), not a toxic", strings.Join(ActionNames(TargetWorker), ", "))
	}
	if s.Stream != "" && !slices.Contains(StreamNames(), s.Stream) {
		add("stream", "stream must be one of %s, got %q", strings.Join(StreamNames(), ", "), s.Stream)
	}
	if s.Toxicity < 0 || s.Toxicity > 1 {
		add("toxicity", "toxicity must be between 0 and 1, got %v", s.Toxicity)
	}
	t, ok := LookupToxic(s.Toxic)
	if !ok {
		add("toxic", "unknown toxic %q; want one of %s", s.Toxic, strings.Join(ToxicNames(), ", "))
		return ps
	}
	for _, k := range sortedKeys(s.Attrs) {
		if _, ok := t.Attr(k); !ok {
			add(k, "%s is not an attribute of toxic %s (it takes %s)", k, t.Name, strings.Join(t.AttrNames(), ", "))
		} else if s.Attrs[k] < 0 {
			add(k, "%s must not be negative", k)
		}
	}
	for _, a := range t.Attrs {
		if _, set := s.Attrs[a.Name]; a.Required && !set {
			add("", "toxic %s needs %s", t.Name, a.Name)
		}
	}
	return ps
}

// TargetLabel names the target with its name, e.g. "dependency payments".
func (s Spec) TargetLabel() string {
	if s.Name != "" {
		return s.Target + " " + s.Name
	}
	return s.Target
}

// Detail describes the fault's parameters, e.g. "latency=1000 stream=both for=10s".
func (s Spec) Detail() string {
	var parts []string
	if s.Name != "" {
		parts = append(parts, "name="+s.Name)
	}
	if s.Node != "" {
		parts = append(parts, "node="+s.Node)
	}
	if s.Groups != nil {
		parts = append(parts, "nodes="+GroupsString(s.Groups))
	}
	if s.Queue != "" {
		parts = append(parts, "queue="+s.Queue)
	}
	for _, k := range sortedKeys(s.Attrs) {
		parts = append(parts, k+"="+strconv.FormatInt(s.Attrs[k], 10))
	}
	if s.Toxic != "" {
		stream := s.Stream
		if stream == "" {
			stream = StreamDown
		}
		parts = append(parts, "stream="+stream)
		if s.Toxicity != 0 && s.Toxicity != 1 {
			parts = append(parts, "toxicity="+strconv.FormatFloat(s.Toxicity, 'g', -1, 64))
		}
	}
	if s.For == 0 && s.Lasting() == Brief {
		parts = append(parts, "window="+BriefWindow.String())
	} else if s.For > 0 {
		parts = append(parts, "for="+s.For.String())
	}
	return strings.Join(parts, " ")
}

// exclusive returns the resource a fault holds alone, if any: a proxy cannot
// be down twice, and a broker node does one thing at a time.
func (s Spec) exclusive() (string, bool) {
	switch {
	case s.Down:
		return "down " + s.TargetLabel(), true
	case s.NeedsManagedBroker():
		return "broker action", true
	}
	return "", false
}

// Overlap is two faults that hold the same resource at the same time.
type Overlap struct {
	A, B int // indices into the specs, A < B
	What string
}

func (o Overlap) Error() string {
	return fmt.Sprintf("faults %d and %d overlap: one %s at a time", o.A+1, o.B+1, o.What)
}

// Overlaps returns every pair of specs that cannot run at the same time.
func Overlaps(specs []Spec) []Overlap {
	var out []Overlap
	for i, a := range specs {
		ka, ok := a.exclusive()
		if !ok {
			continue
		}
		for j := i + 1; j < len(specs); j++ {
			b := specs[j]
			if kb, ok := b.exclusive(); !ok || kb != ka {
				continue
			}
			if a.At <= b.At+b.Hold() && b.At <= a.At+a.Hold() {
				out = append(out, Overlap{A: i, B: j, What: ka})
			}
		}
	}
	return out
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
