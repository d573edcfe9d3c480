package fault

import (
	"strings"
	"testing"
	"time"
)

const s = time.Second

func TestValidateAcceptsEveryTableEntry(t *testing.T) {
	// Every action and toxic of the table, with what its Lasting asks for,
	// is a valid fault: the table and the rules cannot disagree.
	for _, a := range Actions() {
		spec := Spec{At: s, Target: a.Target, Action: a.Name}
		if a.Lasting == Required || a.Lasting == Optional {
			spec.For = 2 * s
		}
		if a.Takes&NeedsNodes != 0 {
			spec.Groups = [][]int{{1}, {2, 3}}
		}
		if a.Takes&NeedsQueue != 0 {
			spec.Queue = QueueRetry
		}
		if a.Takes&TakesNode != 0 {
			spec.Node = NodeLeader
		}
		if err := spec.Validate(); err != nil {
			t.Errorf("%s %s: %v", a.Target, a.Name, err)
		}
	}
	for _, name := range ToxicNames() {
		tx, _ := LookupToxic(name)
		attrs := map[string]int64{}
		for _, a := range tx.Attrs {
			attrs[a.Name] = 5
		}
		for _, target := range []string{TargetDependency, TargetBroker} {
			spec := Spec{At: s, For: s, Target: target, Toxic: name, Attrs: attrs, Stream: StreamBoth}
			if err := spec.Validate(); err != nil {
				t.Errorf("toxic %s on %s: %v", name, target, err)
			}
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  Spec
		field string
		msg   string
	}{
		{"unknown target", Spec{Target: "db", Down: true}, "target", `got "db"`},
		{"negative at", Spec{At: -s, Target: TargetBroker, Down: true}, "at", "negative"},
		{"two kinds", Spec{Target: TargetBroker, Down: true, Action: ActionKill}, "", "exactly one of"},
		{"none", Spec{Target: TargetBroker}, "", "exactly one of"},
		{"unknown toxic", Spec{For: s, Target: TargetBroker, Toxic: "latncy"}, "toxic", "unknown toxic"},
		{"toxic on a worker", Spec{For: s, Target: TargetWorker, Toxic: "reset_peer"}, "toxic", "a worker takes an action"},
		{"down on a worker", Spec{Target: TargetWorker, Down: true}, "down", "a worker takes an action"},
		{"action on the dependency", Spec{Target: TargetDependency, Action: ActionKill}, "action", "not an action"},
		{"unknown action", Spec{Target: TargetBroker, Action: "reboot"}, "action", "restart, kill, stop, block"},
		{"worker action of the broker", Spec{Target: TargetWorker, Action: ActionBlock, For: s}, "action", "kill, stop, pause"},
		{"foreign attribute", Spec{For: s, Target: TargetBroker, Toxic: "latency", Attrs: map[string]int64{"latency": 1, "rate": 5}}, "rate", "not an attribute of toxic latency"},
		{"negative attribute", Spec{For: s, Target: TargetBroker, Toxic: "latency", Attrs: map[string]int64{"latency": -1}}, "latency", "negative"},
		{"required attribute", Spec{For: s, Target: TargetBroker, Toxic: "bandwidth"}, "", "needs rate"},
		{"bad stream", Spec{For: s, Target: TargetBroker, Toxic: "timeout", Stream: "sideways"}, "stream", "down, up, both"},
		{"toxicity above 1", Spec{For: s, Target: TargetBroker, Toxic: "timeout", Toxicity: 1.5}, "toxicity", "between 0 and 1"},
		{"stream without a toxic", Spec{Target: TargetBroker, Down: true, Stream: StreamUp}, "stream", "toxics only"},
		{"attribute without a toxic", Spec{Target: TargetBroker, Down: true, Attrs: map[string]int64{"latency": 1}}, "latency", "toxics only"},
		{"for on an instant action", Spec{For: s, Target: TargetBroker, Action: ActionRestart}, "for", "instantaneous"},
		{"for on a worker kill", Spec{For: s, Target: TargetWorker, Action: ActionKill}, "for", "instantaneous"},
		{"pause without for", Spec{Target: TargetWorker, Action: ActionPause}, "", "missing for"},
		{"latency without for", Spec{Target: TargetBroker, Toxic: "latency", Attrs: map[string]int64{"latency": 1}}, "", "missing for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, p := range tc.spec.Problems() {
				if p.Field == tc.field && strings.Contains(p.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("no problem on field %q mentioning %q in:\n%v", tc.field, tc.msg, err)
		})
	}
}

func TestValidateOptionalAndBrief(t *testing.T) {
	for _, spec := range []Spec{
		{Target: TargetBroker, Action: ActionKill},                // start again at once
		{For: 5 * s, Target: TargetBroker, Action: ActionKill},    // down for 5 s
		{For: 10 * s, Target: TargetBroker, Action: ActionStop},   // a planned outage
		{Target: TargetBroker, Toxic: "reset_peer"},               // brief
		{Target: TargetBroker, Toxic: "timeout", Stream: "both"},  // brief
		{Target: TargetDependency, Down: true},                    // brief
		{For: 3 * s, Target: TargetDependency, Down: true},        // or as long as asked
		{For: 3 * s, Target: TargetBroker, Toxic: "reset_peer"},   // likewise
		{For: 3 * s, Target: TargetWorker, Action: ActionPause},   // required for
		{For: 3 * s, Target: TargetBroker, Action: ActionBlock},   // required for
		{Target: TargetWorker, Action: ActionStop},                // instant
		{Target: TargetBroker, Action: ActionRestart},             // instant
		{Target: TargetBroker, Toxic: "timeout", Toxicity: 0.25},  // partial
		{Target: TargetBroker, Toxic: "reset_peer", Toxicity: 1},  // all
		{Target: TargetBroker, Toxic: "reset_peer", Stream: "up"}, // upstream
	} {
		if err := spec.Validate(); err != nil {
			t.Errorf("%+v: %v", spec, err)
		}
	}
}

func TestHoldAndDetail(t *testing.T) {
	for _, tc := range []struct {
		spec   Spec
		hold   time.Duration
		detail string
	}{
		{Spec{Target: TargetBroker, Toxic: "reset_peer"}, BriefWindow, "stream=down window=1s"},
		{Spec{Target: TargetBroker, Down: true}, BriefWindow, "window=1s"},
		{Spec{For: 4 * s, Target: TargetBroker, Down: true}, 4 * s, "for=4s"},
		{Spec{For: 10 * s, Target: TargetDependency, Toxic: "latency", Stream: "both", Toxicity: 0.5, Attrs: map[string]int64{"latency": 1000, "jitter": 10}}, 10 * s, "jitter=10 latency=1000 stream=both toxicity=0.5 for=10s"},
		{Spec{Target: TargetBroker, Action: ActionRestart}, 0, ""},
		{Spec{For: 5 * s, Target: TargetBroker, Action: ActionKill}, 5 * s, "for=5s"},
	} {
		if got := tc.spec.Hold(); got != tc.hold {
			t.Errorf("%+v: hold %v, want %v", tc.spec, got, tc.hold)
		}
		if got := tc.spec.Detail(); got != tc.detail {
			t.Errorf("%+v: detail %q, want %q", tc.spec, got, tc.detail)
		}
	}
}

func TestOverlaps(t *testing.T) {
	specs := []Spec{
		{At: 1 * s, For: 5 * s, Target: TargetDependency, Down: true},
		{At: 3 * s, Target: TargetDependency, Down: true}, // inside the first: overlap
		{At: 7 * s, Target: TargetDependency, Down: true}, // after the first: fine
		{At: 3 * s, Target: TargetBroker, Down: true},     // another target: fine
		{At: 10 * s, For: 5 * s, Target: TargetBroker, Action: ActionBlock},
		{At: 12 * s, Target: TargetBroker, Action: ActionRestart}, // during the block: overlap
		{At: 12 * s, For: 9 * s, Target: TargetWorker, Action: ActionPause},
		{At: 13 * s, For: 9 * s, Target: TargetWorker, Action: ActionPause}, // workers: one each, fine
	}
	got := Overlaps(specs)
	want := []Overlap{{A: 0, B: 1, What: "down dependency"}, {A: 4, B: 5, What: "broker action"}}
	if len(got) != len(want) {
		t.Fatalf("overlaps %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("overlap %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if msg := got[0].Error(); msg != "faults 1 and 2 overlap: one down dependency at a time" {
		t.Errorf("message %q", msg)
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct {
		toxic, attr string
		unit        Unit
		dur         time.Duration
	}{
		{"latency", "latency", Millis, time.Millisecond},
		{"latency", "jitter", Millis, time.Millisecond},
		{"slow_close", "delay", Millis, time.Millisecond},
		{"timeout", "timeout", Millis, time.Millisecond},
		{"reset_peer", "timeout", Millis, time.Millisecond},
		{"slicer", "delay", Micros, time.Microsecond},
		{"slicer", "average_size", Bytes, 0},
		{"bandwidth", "rate", KBps, 0},
		{"limit_data", "bytes", Bytes, 0},
	} {
		tx, ok := LookupToxic(tc.toxic)
		if !ok {
			t.Fatalf("no toxic %s", tc.toxic)
		}
		a, ok := tx.Attr(tc.attr)
		if !ok || a.Unit != tc.unit || a.Unit.Duration() != tc.dur {
			t.Errorf("%s.%s = %+v (%v), want unit %v (%v)", tc.toxic, tc.attr, a, ok, tc.unit, tc.dur)
		}
	}
	if _, ok := LookupToxic("nope"); ok {
		t.Error("unknown toxic found")
	}
}

func TestClusterKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  Spec
		field string
		msg   string // "" when valid
	}{
		{"kill the leader", Spec{Target: TargetBroker, Action: ActionKill, Node: NodeLeader}, "", ""},
		{"stop node 2", Spec{Target: TargetBroker, Action: ActionStop, Node: "2", For: s}, "", ""},
		{"a toxic on node 3", Spec{Target: TargetBroker, Toxic: "reset_peer", Node: "3"}, "", ""},
		{"disk alarm on any node", Spec{Target: TargetBroker, Action: ActionDiskAlarm, Node: NodeAny, For: s}, "", ""},
		{"partition", Spec{Target: TargetBroker, Action: ActionPartition, Groups: [][]int{{1}, {2, 3}}, For: s}, "", ""},
		{"cancel the job's consumers", Spec{Target: TargetBroker, Action: ActionCancelConsumers}, "", ""},
		{"node zero", Spec{Target: TargetBroker, Action: ActionKill, Node: "0"}, "node", "from 1 to 9"},
		{"node word", Spec{Target: TargetBroker, Action: ActionKill, Node: "leadr"}, "node", "leader, follower or any"},
		{"node of a worker", Spec{Target: TargetWorker, Action: ActionKill, Node: "1"}, "node", "node applies to"},
		{"node of delete_queue", Spec{Target: TargetBroker, Action: ActionDeleteQueue, Queue: QueueJob, Node: "1"}, "node", "node applies to"},
		{"partition without nodes", Spec{Target: TargetBroker, Action: ActionPartition, For: s}, "", "missing nodes"},
		{"partition of one group", Spec{Target: TargetBroker, Action: ActionPartition, Groups: [][]int{{1, 2}}, For: s}, "nodes", "at least two groups"},
		{"partition twice a node", Spec{Target: TargetBroker, Action: ActionPartition, Groups: [][]int{{1, 2}, {2}}, For: s}, "nodes", "node 2 is in two groups"},
		{"partition empty group", Spec{Target: TargetBroker, Action: ActionPartition, Groups: [][]int{{1}, {}}, For: s}, "nodes", "group 2 is empty"},
		{"partition without for", Spec{Target: TargetBroker, Action: ActionPartition, Groups: [][]int{{1}, {2}}}, "", "missing for"},
		{"nodes of a kill", Spec{Target: TargetBroker, Action: ActionKill, Groups: [][]int{{1}, {2}}}, "nodes", "partition only"},
		{"delete without queue", Spec{Target: TargetBroker, Action: ActionDeleteQueue}, "", "missing queue"},
		{"queue of a kill", Spec{Target: TargetBroker, Action: ActionKill, Queue: QueueJob}, "queue", "delete_queue, cancel_consumers"},
		{"alarm without for", Spec{Target: TargetBroker, Action: ActionMemoryAlarm}, "", "missing for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := tc.spec.Problems()
			if tc.msg == "" {
				for _, p := range ps {
					t.Errorf("unexpected problem at %q: %s", p.Field, p.Msg)
				}
				return
			}
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("no problem at %q containing %q; got %v", tc.field, tc.msg, ps)
		})
	}
}

func TestCheckCluster(t *testing.T) {
	part := Spec{Target: TargetBroker, Action: ActionPartition, Groups: [][]int{{1}, {2}}, For: s}
	if ps := part.CheckCluster(2); len(ps) != 0 {
		t.Errorf("partition of 2 nodes: %v", ps[0])
	}
	for _, tc := range []struct {
		spec  Spec
		size  int
		field string
		msg   string
	}{
		{part, 3, "nodes", "node 3 is in no group"},
		{part, 1, "action", "needs a cluster"},
		{Spec{Target: TargetBroker, Action: ActionPartition, Groups: [][]int{{1}, {4}}, For: s}, 3, "nodes", "nodes 1 to 3"},
		{Spec{Target: TargetBroker, Action: ActionKill, Node: "4"}, 3, "node", "the broker has 3 node(s)"},
	} {
		ps := tc.spec.CheckCluster(tc.size)
		if len(ps) != 1 || ps[0].Field != tc.field || !strings.Contains(ps[0].Msg, tc.msg) {
			t.Errorf("%s on %d nodes: got %v, want %q at %q", tc.spec.Detail(), tc.size, ps, tc.msg, tc.field)
		}
	}
	if got := (Spec{Target: TargetBroker, Action: ActionKill, Node: NodeFollower}).CheckCluster(1); len(got) != 1 || !strings.Contains(got[0].Msg, "needs a cluster") {
		t.Errorf("follower of a single node: %v", got)
	}
	if got := (Spec{Target: TargetBroker, Action: ActionKill, Node: NodeLeader}).CheckCluster(1); len(got) != 0 {
		t.Errorf("leader of a single node: %v", got)
	}
}

func TestDetailNamesNodesAndQueue(t *testing.T) {
	got := Spec{Target: TargetBroker, Action: ActionPartition, Groups: [][]int{{1}, {2, 3}}, For: 10 * s}.Detail()
	if got != "nodes=[1]|[2,3] for=10s" {
		t.Errorf("Detail = %q", got)
	}
	got = Spec{Target: TargetBroker, Action: ActionKill, Node: NodeLeader}.Detail()
	if got != "node=leader" {
		t.Errorf("Detail = %q", got)
	}
}
