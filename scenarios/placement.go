package scenarios

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/chaos/fault"
)

// Placement says which parts of a run execute on agents on other hosts
// (`bench agent`, docs/agents.md). Its zero value runs everything on the
// runner's host.
type Placement struct {
	// Workers spreads workers.processes over agents.
	Workers AgentSet
	// Generators splits the load over agents: each publishes a range of the
	// sequence numbers at its share of the rate.
	Generators AgentSet
	// Timeout is how long the run waits for enough agents; 0 is
	// DefaultPlacementTimeout.
	Timeout time.Duration
}

// DefaultPlacementTimeout is how long a run waits for its agents by default.
const DefaultPlacementTimeout = 60 * time.Second

// AgentSet is a number of agents, chosen by name or label.
type AgentSet struct {
	Agents int               // how many; with Names and no Agents, len(Names)
	Labels map[string]string // every label must match
	Names  []string          // these agents, by name
}

// Enabled reports whether any part of the run is placed on agents.
func (p Placement) Enabled() bool { return p.Workers.Agents > 0 || p.Generators.Agents > 0 }

// Matches reports whether an agent with this name and these labels may be
// one of the set.
func (a AgentSet) Matches(name string, labels map[string]string) bool {
	if len(a.Names) > 0 && !slices.Contains(a.Names, name) {
		return false
	}
	for k, v := range a.Labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// String describes the set for messages: "3 agents with role=workers".
func (a AgentSet) String() string {
	s := plural(a.Agents, "agent")
	var sel []string
	if len(a.Names) > 0 {
		sel = append(sel, "named "+strings.Join(a.Names, ", "))
	}
	if len(a.Labels) > 0 {
		var ls []string
		for k, v := range a.Labels {
			ls = append(ls, k+"="+v)
		}
		slices.Sort(ls)
		sel = append(sel, "with "+strings.Join(ls, ","))
	}
	if len(sel) > 0 {
		s += " " + strings.Join(sel, " ")
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

var labelRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)

var placementFields = []field[Placement]{
	objKey(meta{Name: "workers", Doc: "run workers.processes on agents, spread evenly"}, func(p *Placement) *AgentSet { return &p.Workers }, agentSetFields, checkAgentSet),
	objKey(meta{Name: "generators", Doc: "split the load over agents: each publishes a range of sequence numbers at its share of the rate"}, func(p *Placement) *AgentSet { return &p.Generators }, agentSetFields, checkAgentSet),
	durKey(meta{Name: "timeout", Default: "60s", Doc: "how long the run waits for enough agents before it fails (exit 3)"}, true, func(p *Placement) *time.Duration { return &p.Timeout }),
}

var agentSetFields = []field[AgentSet]{
	intKey(meta{Name: "agents", Doc: "how many agents; default the number of names"}, 1, 64, func(a *AgentSet) *int { return &a.Agents }),
	customKey(meta{Name: "labels", Doc: "agents whose labels (bench agent --labels) include all of these"},
		func() map[string]any {
			return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
		}, decodeLabels),
	customKey(meta{Name: "names", Doc: "these agents, by name (bench agent --name)"},
		func() map[string]any {
			return map[string]any{"type": "array", "uniqueItems": true, "items": map[string]any{"type": "string", "minLength": 1}}
		}, decodeNames),
}

func decodeLabels(d *decoder, n *yaml.Node, path string, a *AgentSet) {
	o := d.object(n, path)
	if o == nil {
		return
	}
	a.Labels = map[string]string{}
	for i := 0; i+1 < len(o.n.Content); i += 2 {
		k, v := deref(o.n.Content[i]), deref(o.n.Content[i+1])
		if k == nil || o.keys[k.Value] != k {
			continue
		}
		if !labelRe.MatchString(k.Value) {
			d.errf(k, path, "%q is not a label name", k.Value)
			continue
		}
		if v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			d.errf(v, join(path, k.Value), "must be a string, got %s", describe(v))
			continue
		}
		a.Labels[k.Value] = v.Value
	}
}

func decodeNames(d *decoder, n *yaml.Node, path string, a *AgentSet) {
	for _, item := range d.list(n, path, 64) {
		item = deref(item)
		if item == nil || item.Kind != yaml.ScalarNode || item.Value == "" || item.Tag == "!!null" {
			d.errf(item, path, "an agent name must be a non-empty string, got %s", describe(item))
			continue
		}
		if slices.Contains(a.Names, item.Value) {
			d.errf(item, path, "agent %s is named twice", item.Value)
			continue
		}
		a.Names = append(a.Names, item.Value)
	}
}

func checkAgentSet(d *decoder, o *obj, a *AgentSet) {
	switch {
	case a.Agents == 0 && len(a.Names) > 0:
		a.Agents = len(a.Names)
	case a.Agents == 0:
		d.errf(o.n, o.path, "needs agents (how many) or names")
	case len(a.Names) > 0 && a.Agents != len(a.Names):
		d.errf(o.keys["agents"], o.path, "agents is %d but %d names are given", a.Agents, len(a.Names))
	}
}

// checkPlacement applies the rules between placement and the rest: what
// runs on an agent must not need the runner's host.
func (d *decoder) checkPlacement(top *obj, s *Scenario) {
	p := s.Placement
	if !p.Enabled() {
		return
	}
	at := top.keys["placement"]
	if s.OwnWorker() && p.Workers.Agents > 0 {
		d.errf(at, "placement", "placement.workers runs bench worker on agents; workers.command (your own worker) is not placed on agents yet")
	}
	if s.OwnWorker() && p.Generators.Agents > 0 {
		d.errf(at, "placement", "placement.generators does not take job.body or job.tid of workers.command yet")
	}
	if s.Broker.Managed {
		d.errf(at, "placement", "agents join the broker they were started with; a private node the run starts (broker.managed) is out of their reach")
	}
	if p.Workers.Agents > 0 && s.Workers.Processes < p.Workers.Agents {
		d.errf(at, "placement", "workers.processes (%d) must be at least placement.workers.agents (%d): each agent runs one or more", s.Workers.Processes, p.Workers.Agents)
	}
	for _, f := range s.Faults {
		switch {
		case f.Target == fault.TargetDependency:
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: "with placement each agent runs its own simulated dependency: dependency faults do not reach it yet"})
		case f.Target == fault.TargetBroker && f.Action == "":
			d.errs = append(d.errs, &Error{Pos: f.Pos, Msg: "broker toxics act on proxies on the runner's host, which agents do not pass through; with placement use worker faults or broker actions"})
		}
	}
	if n := p.Generators.Agents; n > 0 {
		for i, ph := range s.Load {
			if ph.Count() < int64(n) {
				d.errs = append(d.errs, &Error{Pos: ph.Pos, Msg: "load phase " + strconv.Itoa(i+1) + " schedules fewer jobs than placement.generators.agents: every agent needs at least one"})
			}
		}
	}
}
