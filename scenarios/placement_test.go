package scenarios

import (
	"reflect"
	"strings"
	"testing"
)

const placeBase = `name: place
task: bench.job.process
workers: {processes: 3}
load:
  - spike: {jobs: 10}
`

func TestPlacementKeys(t *testing.T) {
	s, err := Parse("s.yaml", []byte(placeBase+`placement:
  workers: {agents: 3, labels: {role: workers, zone: b}}
  generators: {names: [gen-a, gen-b]}
  timeout: 2m
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Placement
	want := Placement{
		Workers:    AgentSet{Agents: 3, Labels: map[string]string{"role": "workers", "zone": "b"}},
		Generators: AgentSet{Agents: 2, Names: []string{"gen-a", "gen-b"}},
		Timeout:    120e9,
	}
	if !reflect.DeepEqual(p, want) || !p.Enabled() {
		t.Fatalf("placement %+v, want %+v", p, want)
	}
	if !p.Workers.Matches("any", map[string]string{"role": "workers", "zone": "b", "extra": "x"}) ||
		p.Workers.Matches("any", map[string]string{"role": "workers"}) ||
		!p.Generators.Matches("gen-b", nil) || p.Generators.Matches("gen-c", nil) {
		t.Fatal("Matches chose the wrong agents")
	}
	if got := p.Workers.String(); got != "3 agents with role=workers,zone=b" {
		t.Fatalf("String() = %q", got)
	}
	if s, err := Parse("s.yaml", []byte(placeBase), nil); err != nil || s.Placement.Enabled() {
		t.Fatalf("no placement: %+v, %v", s.Placement, err)
	}
}

func TestPlacementErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"no count", "placement: {workers: {labels: {a: b}}}\n", "s.yaml:6:22: placement.workers: needs agents (how many) or names"},
		{"count and names disagree", "placement: {workers: {agents: 2, names: [a]}}\n", "agents is 2 but 1 names are given"},
		{"duplicate name", "placement: {workers: {names: [a, a]}}\n", "agent a is named twice"},
		{"more agents than processes", "placement: {workers: {agents: 4}}\n", "workers.processes (3) must be at least placement.workers.agents (4)"},
		{"managed broker", "broker: {managed: true}\nplacement: {generators: {agents: 1}}\n", "out of their reach"},
		{"broker toxic", "placement: {workers: {agents: 1}}\nfaults: [{at: 0s, for: 1s, target: broker, toxic: latency, latency: 1s}]\n", "broker toxics act on proxies on the runner's host"},
		{"too few jobs", "placement: {generators: {agents: 11}}\n", "load phase 1 schedules fewer jobs than placement.generators.agents"},
		{"label value", "placement: {workers: {agents: 1, labels: {a: [b]}}}\n", "must be a string"},
		{"own worker", "placement: {workers: {agents: 1}}\n", "not placed on agents yet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := placeBase + c.src
			if c.name == "own worker" {
				src = strings.Replace(src, "workers: {processes: 3}", "workers: {processes: 3, command: [w]}", 1)
			}
			_, err := Parse("s.yaml", []byte(src), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}
