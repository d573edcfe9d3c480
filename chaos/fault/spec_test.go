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
