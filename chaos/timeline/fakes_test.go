package timeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/benchmq/bench/chaos/proxy"
)

// recorder logs the calls fake targets receive, with the fake time since the
// load started.
type recorder struct {
	n     *notifier
	clock *fakeClock
	start time.Time

	mu    sync.Mutex
	calls []string
	fail  map[string]error // call -> error to return
}

func (r *recorder) record(call string) error {
	r.mu.Lock()
	at := r.clock.Now().Sub(r.start)
	r.calls = append(r.calls, fmt.Sprintf("%v %s", at, call))
	err := r.fail[call]
	r.mu.Unlock()
	r.n.notify()
	return err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// sorted returns the calls ordered by time, then name: concurrent faults
// may call in any order within one instant.
func (r *recorder) sorted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.calls)
	slices.SortFunc(out, func(a, b string) int {
		ta, _ := time.ParseDuration(strings.Fields(a)[0])
		tb, _ := time.ParseDuration(strings.Fields(b)[0])
		if ta != tb {
			return int(ta - tb)
		}
		return strings.Compare(a, b)
	})
	return out
}

type fakeProxy struct {
	name string
	r    *recorder
}

func (p fakeProxy) AddToxic(_ context.Context, t proxy.Toxic) error {
	return p.r.record(p.name + ".add " + t.Name + " " + t.Type)
}
func (p fakeProxy) RemoveToxic(_ context.Context, name string) error {
	return p.r.record(p.name + ".remove " + name)
}
func (p fakeProxy) Down(context.Context) error { return p.r.record(p.name + ".down") }
func (p fakeProxy) Up(context.Context) error   { return p.r.record(p.name + ".up") }

type fakeBroker struct{ r *recorder }

func (b fakeBroker) Stop(context.Context) error    { return b.r.record("broker.stop") }
func (b fakeBroker) Start(context.Context) error   { return b.r.record("broker.start") }
func (b fakeBroker) Restart(context.Context) error { return b.r.record("broker.restart") }
func (b fakeBroker) Kill(context.Context) error    { return b.r.record("broker.kill") }
func (b fakeBroker) Block(context.Context) error   { return b.r.record("broker.block") }
func (b fakeBroker) Unblock(context.Context) error { return b.r.record("broker.unblock") }

type fakeWorkers struct{ r *recorder }

func (w fakeWorkers) Kill(context.Context) error { return w.r.record("worker.kill") }
func (w fakeWorkers) Stop(context.Context) error { return w.r.record("worker.stop") }
func (w fakeWorkers) Pause(context.Context) (func(context.Context) error, error) {
	return func(context.Context) error { return w.r.record("worker.resume") }, w.r.record("worker.pause")
}

// env is a fake environment: a clock at the load start and targets that
// record calls.
type env struct {
	n       *notifier
	clock   *fakeClock
	start   time.Time
	rec     *recorder
	targets Targets
}

func newEnv() *env {
	n := newNotifier()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := newFakeClock(start, n)
	rec := &recorder{n: n, clock: clock, start: start, fail: make(map[string]error)}
	return &env{n: n, clock: clock, start: start, rec: rec, targets: Targets{
		DependencyProxy: fakeProxy{"dep", rec},
		BrokerProxies:   []ProxyTarget{fakeProxy{"bp1", rec}, fakeProxy{"bp2", rec}},
		Broker:          fakeBroker{rec},
		Workers:         fakeWorkers{rec},
	}}
}
