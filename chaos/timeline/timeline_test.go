package timeline

import (
	"github.com/benchmq/bench/chaos/fault"

	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

const s = time.Second

func TestTimelineAppliesAndUndoesInOrder(t *testing.T) {
	e := newEnv()
	specs := []fault.Spec{
		{At: 5 * s, For: 10 * s, Target: fault.TargetDependency, Toxic: "latency", Attrs: map[string]int64{"latency": 1000}},
		{At: 5 * s, For: 5 * s, Target: fault.TargetDependency, Down: true},
		{At: 8 * s, Target: fault.TargetBroker, Toxic: "reset_peer"},
		{At: 10 * s, Target: fault.TargetBroker, Action: fault.ActionRestart},
		{At: 12 * s, Target: fault.TargetWorker, Action: fault.ActionKill},
		{At: 3 * s, For: 2 * s, Target: fault.TargetWorker, Action: fault.ActionPause},
		{At: 14 * s, For: 3 * s, Target: fault.TargetBroker, Action: fault.ActionKill},
	}
	// ends[i] is when spec i's goroutine finishes: it waits on one timer until then.
	ends := []time.Duration{15 * s, 10 * s, 9 * s, 10 * s, 12 * s, 5 * s, 17 * s}
	want := []string{
		"3s worker.pause",
		"5s dep.add fault1-latency latency", "5s dep.down", "5s worker.resume",
		"8s bp1.add fault3-reset_peer reset_peer", "8s bp2.add fault3-reset_peer reset_peer",
		"9s bp1.remove fault3-reset_peer", "9s bp2.remove fault3-reset_peer",
		"10s broker.restart", "10s dep.up",
		"12s worker.kill",
		"14s broker.kill",
		"15s dep.remove fault1-latency",
		"17s broker.start",
	}
	tl, err := New(specs, e.targets, e.clock)
	if err != nil {
		t.Fatalf("new timeline: %v", err)
	}
	ctx := testCtx(t, 10*time.Second)
	done := make(chan []Applied, 1)
	go func() { done <- tl.Run(ctx, e.start) }()

	for now := time.Duration(0); now <= 20*s; now += s {
		if now > 0 {
			e.clock.Advance(s)
		}
		wantPending := 0
		for _, end := range ends {
			if end > now {
				wantPending++
			}
		}
		wantCalls := 0
		for _, c := range want {
			at, _ := time.ParseDuration(strings.Fields(c)[0])
			if at <= now {
				wantCalls++
			}
		}
		if !e.n.waitFor(ctx, func() bool { return e.clock.pending() == wantPending && e.rec.count() == wantCalls }) {
			t.Fatalf("at %v: %d timers pending, %d calls %v; want %d and %d", now, e.clock.pending(), e.rec.count(), e.rec.sorted(), wantPending, wantCalls)
		}
	}
	var applied []Applied
	select {
	case applied = <-done:
	case <-ctx.Done():
		t.Fatal("Run did not return after the last fault")
	}
	if got := e.rec.sorted(); !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	type span struct {
		kind       string
		start, end time.Duration
	}
	wantSpans := []span{
		{"pause", 3 * s, 5 * s}, {"latency", 5 * s, 15 * s}, {"down", 5 * s, 10 * s},
		{"reset_peer", 8 * s, 9 * s}, {"restart", 10 * s, 10 * s}, {"kill", 12 * s, 12 * s}, {"kill", 14 * s, 17 * s},
	}
	if len(applied) != len(wantSpans) {
		t.Fatalf("applied %d faults, want %d", len(applied), len(wantSpans))
	}
	for i, a := range applied {
		// End is read after the undo returned, when the test may already
		// have moved the clock on; TestTimelineSpans checks it exactly.
		got := span{a.Kind, a.Start.Sub(e.start), a.End.Sub(e.start)}
		w := wantSpans[i]
		if got.kind != w.kind || got.start != w.start || got.end < w.end || a.Err != nil {
			t.Errorf("applied[%d] = %+v (err %v), want %+v", i, got, a.Err, w)
		}
	}
	if d := applied[3].Detail; d != "stream=down window=1s" {
		t.Errorf("reset_peer detail = %q", d)
	}
	if d := applied[1].Detail; d != "latency=1000 stream=down for=10s" {
		t.Errorf("latency detail = %q", d)
	}
}

func TestTimelineCancelUndoesActiveFaults(t *testing.T) {
	e := newEnv()
	specs := []fault.Spec{
		{At: 1 * s, For: 100 * s, Target: fault.TargetDependency, Toxic: "latency", Stream: "both", Attrs: map[string]int64{"latency": 50}},
		{At: 2 * s, For: 50 * s, Target: fault.TargetBroker, Action: fault.ActionBlock},
		{At: 1 * s, For: 100 * s, Target: fault.TargetWorker, Action: fault.ActionPause},
		{At: 50 * s, Target: fault.TargetWorker, Action: fault.ActionKill},
	}
	tl, err := New(specs, e.targets, e.clock)
	if err != nil {
		t.Fatalf("new timeline: %v", err)
	}
	ctx := testCtx(t, 10*time.Second)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan []Applied, 1)
	go func() { done <- tl.Run(runCtx, e.start) }()
	if !e.n.waitFor(ctx, func() bool { return e.clock.pending() == 4 }) {
		t.Fatal("faults never waited for their start")
	}
	e.clock.Advance(2 * s)
	if !e.n.waitFor(ctx, func() bool { return e.rec.count() == 3 && e.clock.pending() == 4 }) {
		t.Fatalf("calls %v, want three faults applied", e.rec.sorted())
	}
	cancel()
	var applied []Applied
	select {
	case applied = <-done:
	case <-ctx.Done():
		t.Fatal("Run did not return after cancel")
	}
	want := []string{
		"2s broker.block", "2s broker.unblock", "2s dep.add fault1-latency latency", "2s dep.remove fault1-latency",
		"2s worker.pause", "2s worker.resume",
	}
	if got := e.rec.sorted(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if len(applied) != 3 {
		t.Fatalf("applied %d faults, want 3 (the kill never started)", len(applied))
	}
	for _, a := range applied {
		if a.End.Sub(e.start) != 2*s || a.Err != nil {
			t.Errorf("%s ended at %v (err %v), want 2s", a.Kind, a.End.Sub(e.start), a.Err)
		}
	}
}

func TestTimelineApplyFailures(t *testing.T) {
	e := newEnv()
	boom := errors.New("boom")
	e.rec.fail["bp2.add fault1-latency latency"] = boom
	e.rec.fail["broker.restart"] = boom
	specs := []fault.Spec{
		{At: 0, For: 5 * s, Target: fault.TargetBroker, Toxic: "latency", Attrs: map[string]int64{"latency": 10}},
		{At: 0, Target: fault.TargetBroker, Action: fault.ActionRestart},
	}
	tl, err := New(specs, e.targets, e.clock)
	if err != nil {
		t.Fatalf("new timeline: %v", err)
	}
	applied := tl.Run(testCtx(t, 10*time.Second), e.start)
	if len(applied) != 2 {
		t.Fatalf("applied %d, want 2", len(applied))
	}
	for _, a := range applied {
		if !errors.Is(a.Err, boom) {
			t.Errorf("%s: err %v, want boom", a.Kind, a.Err)
		}
	}
	// The half-applied toxic is taken off the proxy it reached.
	want := []string{
		"0s bp1.add fault1-latency latency", "0s bp1.remove fault1-latency",
		"0s bp2.add fault1-latency latency", "0s broker.restart",
	}
	if got := e.rec.sorted(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

func TestNewTimelineValidates(t *testing.T) {
	full := newEnv().targets
	for _, tc := range []struct {
		name    string
		specs   []fault.Spec
		targets Targets
		want    []string
	}{
		{"restart without managed broker", []fault.Spec{{At: s, Target: fault.TargetBroker, Action: fault.ActionRestart}},
			Targets{BrokerProxies: full.BrokerProxies}, []string{"needs a managed broker"}},
		{"toxic without proxy", []fault.Spec{{At: s, For: s, Target: fault.TargetDependency, Toxic: "latency"}},
			Targets{}, []string{"no proxy in front of the dependency"}},
		{"bad fields all reported", []fault.Spec{
			{At: -s, Target: "database", Toxic: "latency"},
			{For: s, Target: fault.TargetWorker, Toxic: "latency", Action: fault.ActionKill},
			{Target: fault.TargetDependency, Toxic: "latncy", Attrs: map[string]int64{"x": 1}},
			{Target: fault.TargetWorker, Action: fault.ActionPause},
			{Target: fault.TargetBroker, Action: fault.ActionBlock},
			{Target: fault.TargetBroker, Action: "reboot"},
			{Target: fault.TargetDependency, Down: true, Stream: "both"},
		}, full, []string{
			"fault 1 (latency at -1s): at -1s is negative", "target must be one of dependency, broker, worker, got \"database\"",
			"fault 1 (latency at -1s): missing for", "fault 2 (latency at 0s): needs exactly one of toxic, down: true or action",
			"unknown toxic \"latncy\"", "fault 4 (pause at 0s): missing for", "fault 5 (block at 0s): missing for",
			"action must be one of restart, kill, stop, block, partition, delete_queue, close_connections, cancel_consumers, memory_alarm, disk_alarm for target broker, got \"reboot\"", "fault 7 (down at 0s): stream applies to toxics only",
		}},
		{"overlapping downs", []fault.Spec{
			{At: s, For: 5 * s, Target: fault.TargetDependency, Down: true},
			{At: 3 * s, Target: fault.TargetDependency, Down: true},
		}, full, []string{"faults 1 and 2 overlap"}},
		{"overlapping broker actions", []fault.Spec{
			{At: s, For: 5 * s, Target: fault.TargetBroker, Action: fault.ActionBlock},
			{At: 4 * s, Target: fault.TargetBroker, Action: fault.ActionRestart},
		}, full, []string{"faults 1 and 2 overlap"}},
		{"worker kill with for", []fault.Spec{{At: s, For: s, Target: fault.TargetWorker, Action: fault.ActionKill}},
			full, []string{"is instantaneous: remove for"}},
		{"unknown named dependency", []fault.Spec{{At: s, For: s, Target: fault.TargetDependency, Name: "payments", Toxic: "latency", Attrs: map[string]int64{"latency": 1}}},
			full, []string{"no proxy in front of dependency payments"}},
		{"name on a worker", []fault.Spec{{At: s, Target: fault.TargetWorker, Name: "payments", Action: fault.ActionKill}},
			full, []string{"name picks a dependency"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.specs, tc.targets, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
	ok := []fault.Spec{
		{At: s, Target: fault.TargetDependency, Down: true},
		{At: 3 * s, Target: fault.TargetDependency, Down: true},
		{At: 2 * s, For: s, Target: fault.TargetBroker, Toxic: "timeout", Stream: "both", Toxicity: 0.5},
		{At: 0, Target: fault.TargetBroker, Action: fault.ActionKill},
		{At: 5 * s, For: 2 * s, Target: fault.TargetBroker, Action: fault.ActionStop},
	}
	if _, err := New(ok, full, nil); err != nil {
		t.Errorf("valid faults rejected: %v", err)
	}
}

// A fault naming a dependency acts on that dependency's proxy alone; its
// down does not overlap another dependency's.
func TestTimelineNamedDependency(t *testing.T) {
	e := newEnv()
	e.targets.Dependencies = map[string]ProxyTarget{"payments": fakeProxy{"payments", e.rec}, "stock": fakeProxy{"stock", e.rec}}
	specs := []fault.Spec{
		{At: s, For: 2 * s, Target: fault.TargetDependency, Name: "payments", Toxic: "latency", Attrs: map[string]int64{"latency": 2000}},
		{At: s, For: 2 * s, Target: fault.TargetDependency, Name: "stock", Down: true},
		{At: s, For: 2 * s, Target: fault.TargetDependency, Down: true},
	}
	tl, err := New(specs, e.targets, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	done := make(chan []Applied, 1)
	go func() { done <- tl.Run(ctx, e.start) }()
	// Each second: the three faults wait on a timer, then the clock moves.
	for i, calls := range []int{0, 3, 3} {
		if !e.n.waitFor(ctx, func() bool { return e.clock.pending() == 3 && e.rec.count() == calls }) {
			t.Fatalf("at %ds: %d timers, calls %v", i, e.clock.pending(), e.rec.sorted())
		}
		e.clock.Advance(s)
	}
	if !e.n.waitFor(ctx, func() bool { return e.rec.count() == 6 }) {
		t.Fatalf("calls %v", e.rec.sorted())
	}
	applied := <-done
	want := []string{"1s dep.down", "1s payments.add fault1-latency latency", "1s stock.down",
		"3s dep.up", "3s payments.remove fault1-latency", "3s stock.up"}
	if got := e.rec.sorted(); !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := applied[0].Detail; d != "name=payments latency=2000 stream=down for=2s" {
		t.Errorf("detail %q", d)
	}
}

// TestTimelineSpans runs one fault at a time and moves the clock only to its
// start and end, so the recorded span is exact.
func TestTimelineSpans(t *testing.T) {
	for _, tc := range []struct {
		spec  fault.Spec
		calls []string
		end   time.Duration
	}{
		{fault.Spec{At: 2 * s, Target: fault.TargetBroker, Down: true}, []string{"2s bp1.down", "2s bp2.down", "3s bp1.up", "3s bp2.up"}, 3 * s},
		{fault.Spec{At: 2 * s, For: 4 * s, Target: fault.TargetBroker, Action: fault.ActionStop}, []string{"2s broker.stop", "6s broker.start"}, 6 * s},
		{fault.Spec{At: 2 * s, For: 4 * s, Target: fault.TargetBroker, Action: fault.ActionBlock}, []string{"2s broker.block", "6s broker.unblock"}, 6 * s},
		{fault.Spec{At: 2 * s, Target: fault.TargetBroker, Action: fault.ActionKill}, []string{"2s broker.kill", "2s broker.start"}, 2 * s},
		{fault.Spec{At: 2 * s, Target: fault.TargetWorker, Action: fault.ActionStop}, []string{"2s worker.stop"}, 2 * s},
		{fault.Spec{At: 2 * s, For: 3 * s, Target: fault.TargetDependency, Toxic: "timeout", Stream: "up"}, []string{"2s dep.add fault1-timeout timeout", "5s dep.remove fault1-timeout"}, 5 * s},
	} {
		t.Run(tc.spec.Kind()+"/"+tc.spec.Target, func(t *testing.T) {
			e := newEnv()
			tl, err := New([]fault.Spec{tc.spec}, e.targets, e.clock)
			if err != nil {
				t.Fatalf("new timeline: %v", err)
			}
			ctx := testCtx(t, 10*time.Second)
			done := make(chan []Applied, 1)
			go func() { done <- tl.Run(ctx, e.start) }()
			if !e.n.waitFor(ctx, func() bool { return e.clock.pending() == 1 }) {
				t.Fatal("fault never waited for its start")
			}
			e.clock.Advance(tc.spec.At)
			if tc.end > tc.spec.At {
				if !e.n.waitFor(ctx, func() bool { return e.clock.pending() == 1 }) {
					t.Fatal("fault never waited for its end")
				}
				e.clock.Advance(tc.end - tc.spec.At)
			}
			var applied []Applied
			select {
			case applied = <-done:
			case <-ctx.Done():
				t.Fatal("Run did not return")
			}
			if got := e.rec.sorted(); !slices.Equal(got, tc.calls) {
				t.Errorf("calls %v, want %v", got, tc.calls)
			}
			if len(applied) != 1 {
				t.Fatalf("applied %d, want 1", len(applied))
			}
			a := applied[0]
			if a.Start.Sub(e.start) != tc.spec.At || a.End.Sub(e.start) != tc.end || a.Err != nil {
				t.Errorf("span %v..%v (err %v), want %v..%v", a.Start.Sub(e.start), a.End.Sub(e.start), a.Err, tc.spec.At, tc.end)
			}
		})
	}
}
