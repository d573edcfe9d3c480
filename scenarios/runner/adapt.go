package runner

import (
	"time"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// The scenario package describes; these turn its types into the ones the
// runtime, the load generator and the fault timeline take.

func toPhases(in []scenarios.Phase) []loadgen.Phase {
	out := make([]loadgen.Phase, len(in))
	for i, p := range in {
		out[i] = loadgen.Phase{Kind: p.Kind, Jobs: int64(p.Jobs), Rate: p.Rate, For: p.For, From: p.From, To: p.To, Over: p.Over, Size: int(p.Size)}
	}
	return out
}

func faultSpecs(in []scenarios.Fault) []fault.Spec {
	out := make([]fault.Spec, len(in))
	for i, f := range in {
		out[i] = fault.Spec{At: f.At, For: f.For, Target: f.Target, Toxic: f.Toxic, Stream: f.Stream, Toxicity: f.Toxicity, Attrs: f.Attrs, Down: f.Down, Action: f.Action}
	}
	return out
}

func (v *variantRun) targets() fault.Targets {
	t := fault.Targets{Workers: v.procs}
	if v.env.depProxy != nil {
		t.DependencyProxy = v.env.depProxy
	}
	if v.env.workerProxy != nil {
		t.BrokerProxies = []fault.ProxyTarget{v.env.workerProxy, v.env.genProxy}
	}
	if v.env.ctl != nil {
		t.Broker = v.env.ctl
	}
	return t
}

// faults turns the applied faults into the result's, with recovery metrics
// computed from the variant's series.
func (v *variantRun) faults(applied []fault.Applied, start time.Time, lost int64) []report.Fault {
	cols := v.samples.snapshot()
	s := fault.Series{T: cols["t_s"], CompleteRate: cols["complete_rate"], QueueReady: cols["queue_ready"]}
	// A failure or a breaker opening is the first sign a fault was noticed.
	fails, open := cols["failures"], cols["breaker_open"]
	for i := range s.T {
		if i > 0 && i < len(fails) && fails[i] > fails[i-1] {
			s.ErrorTimes = append(s.ErrorTimes, s.T[i])
		}
		if i < len(open) && open[i] > 0 && (i == 0 || open[i-1] == 0) {
			s.BreakerOpenTimes = append(s.BreakerOpenTimes, s.T[i])
		}
	}
	out := make([]report.Fault, 0, len(applied))
	for _, m := range fault.Recovery(applied, start, s) {
		f := m.Fault()
		f.LostDuring = lost > 0
		out = append(out, f)
	}
	return out
}
