package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/agent"
	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/scenarios"
)

func TestShardsSplitTheLoad(t *testing.T) {
	load := []scenarios.Phase{
		{Phase: loadgen.Phase{Kind: loadgen.KindSpike, Jobs: 3001, Size: 10}},
		{Phase: loadgen.Phase{Kind: loadgen.KindSteady, Rate: 300, For: 2 * time.Second}},
		{Phase: loadgen.Phase{Kind: loadgen.KindRamp, From: 30, To: 90, Over: time.Second}},
	}
	gens := []*remoteAgent{{hello: agent.Hello{Name: "a"}}, {hello: agent.Hello{Name: "b"}}, {hello: agent.Hello{Name: "c"}}}
	s := newShards(nil, load, gens)
	var total int64
	var next int64
	for k, sh := range s.list {
		if sh.first != next {
			t.Fatalf("shard %d starts at %d, want %d: ranges must be contiguous", k, sh.first, next)
		}
		next += sh.n
		total += sh.n
		if sh.phases[1].Rate != 100 || sh.phases[2].From != 10 || sh.phases[2].To != 30 {
			t.Fatalf("shard %d phases %+v: want a third of each rate", k, sh.phases)
		}
	}
	if want := loadgen.TotalJobs([]loadgen.Phase{load[0].Phase, load[1].Phase, load[2].Phase}); total != want {
		t.Fatalf("shards hold %d jobs, the load %d", total, want)
	}
	if got := []int64{s.list[0].phases[0].Jobs, s.list[1].phases[0].Jobs, s.list[2].phases[0].Jobs}; got[0] != 1001 || got[1] != 1000 || got[2] != 1000 {
		t.Fatalf("spike split %v, want [1001 1000 1000]", got)
	}
	for _, seq := range []int64{0, s.list[1].first, total - 1} {
		if sh := s.of(seq); sh == nil || seq < sh.first || seq >= sh.first+sh.n {
			t.Fatalf("of(%d) = %+v", seq, sh)
		}
	}
	if s.of(total) != nil || s.of(-1) != nil {
		t.Fatal("a sequence number outside every shard has a shard")
	}
}

func TestChooseAndMissingAgents(t *testing.T) {
	p := scenarios.Placement{
		Workers:    scenarios.AgentSet{Agents: 2, Labels: map[string]string{"role": "workers"}},
		Generators: scenarios.AgentSet{Agents: 1, Names: []string{"gen-1"}},
	}
	seen := map[string]agent.Hello{
		"w1": {Name: "w1", Labels: map[string]string{"role": "workers"}},
		"w2": {Name: "w2", Labels: map[string]string{"role": "workers"}, Busy: "other-run"},
		"x":  {Name: "x"},
	}
	if _, _, ok := choose(p, seen); ok {
		t.Fatal("chose agents while one worker agent was busy and the generator absent")
	}
	msg := missingAgents(p, seen, time.Second)
	for _, want := range []string{"w2 (busy with run other-run)", "missing: gen-1", "missing: 1 more", "found 1 free (w1)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	seen["w3"] = agent.Hello{Name: "w3", Labels: map[string]string{"role": "workers", "zone": "b"}}
	seen["gen-1"] = agent.Hello{Name: "gen-1"}
	w, g, ok := choose(p, seen)
	if !ok || len(w) != 2 || w[0].Name != "w1" || w[1].Name != "w3" || len(g) != 1 || g[0].Name != "gen-1" {
		t.Fatalf("choose = %v %v %v", w, g, ok)
	}
}

func TestScheduleRate(t *testing.T) {
	phases := []loadgen.Phase{
		{Kind: loadgen.KindSteady, Rate: 100, For: time.Second},
		{Kind: loadgen.KindRamp, From: 100, To: 300, Over: 2 * time.Second},
	}
	for _, c := range []struct {
		t    time.Duration
		want float64
	}{{-time.Millisecond, 0}, {500 * time.Millisecond, 100}, {2 * time.Second, 200}, {4 * time.Second, 0}} {
		if got := scheduleRate(phases, c.t); got != c.want {
			t.Errorf("scheduleRate(%s) = %g, want %g", c.t, got, c.want)
		}
	}
}

type sinkFunc func(o telemetry.Outcome)

func (f sinkFunc) Outcome(o telemetry.Outcome) { f(o) }

// An outcome (or a dead letter) that overtakes the relay of its job's
// publish waits for it; at the end, one from a dead agent's shard is proof
// that the job was published and taken by the broker.
func TestShardsParkOutcomesUntilPublished(t *testing.T) {
	v := &variantRun{ledger: ledger.New()}
	a, b := &remoteAgent{hello: agent.Hello{Name: "a"}}, &remoteAgent{hello: agent.Hello{Name: "b"}}
	b.offset = agent.Offset{Offset: time.Second} // b's clock is a second ahead
	load := []scenarios.Phase{{Phase: loadgen.Phase{Kind: loadgen.KindSpike, Jobs: 10}}}
	s := newShards(v, load, []*remoteAgent{a, b})
	var applied []telemetry.Outcome
	sink := sinkFunc(func(o telemetry.Outcome) {
		applied = append(applied, o)
		v.ledger.Final(o.Seq, ledger.DeadLettered, o.Attempt)
	})
	s.outcome(sink, telemetry.Outcome{Seq: 1})                                   // a's, not yet published
	s.outcome(sink, telemetry.Outcome{Seq: 7, Intended: int64(time.Second) + 5}) // b's, not yet published
	s.outcome(sink, telemetry.Outcome{Seq: 42})                                  // no shard's: at once
	if len(applied) != 1 || applied[0].Seq != 42 {
		t.Fatalf("applied %+v before any publish, want only the outcome outside the shards", applied)
	}
	for seq := int64(0); seq <= 1; seq++ {
		v.ledger.Published(seq)
		s.published(seq)
	}
	s.replay(false)
	if len(applied) != 2 || applied[1].Seq != 1 {
		t.Fatalf("applied %+v after job 1's publish", applied)
	}
	// b dies before relaying job 7's publish: a worker finished it, so it was published.
	s.list[1].died = true
	s.replay(true)
	if len(applied) != 3 || applied[2].Seq != 7 || applied[2].Intended != 5 {
		t.Fatalf("applied %+v: want job 7 with its intended time on the runner's clock", applied)
	}
	if c := v.ledger.Counts(); c.Published != 3 || c.Confirmed != 1 || c.DeadLettered != 2 || c.Unknown != 1 {
		t.Fatalf("ledger %+v: want jobs 0, 1 and 7 published, 7 confirmed by its outcome, 42 unknown", c)
	}
}
