package runner

import (
	"fmt"
	"time"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/chaos/timeline"
	"github.com/benchmq/bench/report"
)

// faultSpecs are the scenario's faults as the timeline takes them: the same type.
func (v *variantRun) faultSpecs() []fault.Spec {
	out := make([]fault.Spec, len(v.sc.Faults))
	for i, f := range v.sc.Faults {
		out[i] = f.Spec
	}
	return out
}

// targets are what the variant's faults act on.
func (v *variantRun) targets() timeline.Targets {
	t := timeline.Targets{Workers: v.workerTarget()}
	if v.env.depProxy != nil {
		t.DependencyProxy = v.env.depProxy
	}
	if len(v.env.deps) > 0 {
		t.Dependencies = map[string]timeline.ProxyTarget{}
		for name, p := range v.env.deps {
			t.Dependencies[name] = p
		}
	}
	if v.env.workerProxy != nil {
		t.BrokerProxies = []timeline.ProxyTarget{v.env.workerProxy, v.env.genProxy}
	}
	if v.env.ctl != nil {
		t.Broker = v.env.ctl
	}
	v.clusterTargets(&t)
	return t
}

// faults turns the applied faults into the result's, with recovery metrics
// computed from the variant's series.
func (v *variantRun) faults(applied []timeline.Applied, start time.Time, lost int64) []report.Fault {
	cols := v.samples.snapshot()
	s := timeline.Series{T: cols[report.SeriesT], CompleteRate: cols[report.SeriesCompleteRate], QueueReady: cols[report.SeriesQueueReady]}
	// A failure or a breaker opening is the first sign a fault was noticed.
	fails, open := cols[report.SeriesFailures], cols[report.SeriesBreakerOpen]
	for i := range s.T {
		if i > 0 && i < len(fails) && fails[i] > fails[i-1] {
			s.ErrorTimes = append(s.ErrorTimes, s.T[i])
		}
		if i < len(open) && open[i] > 0 && (i == 0 || open[i-1] == 0) {
			s.BreakerOpenTimes = append(s.BreakerOpenTimes, s.T[i])
		}
	}
	out := make([]report.Fault, 0, len(applied))
	for _, m := range timeline.Recovery(applied, start, s) {
		f := resultFault(m)
		f.LostDuring = lost > 0
		out = append(out, f)
	}
	return out
}

// resultFault is m in result.json's form: a figure that was not reached or
// could not be observed is null, with the reason beside it.
func resultFault(m timeline.Metrics) report.Fault {
	f := report.Fault{
		AtS:         m.AtS,
		UntilS:      m.UntilS,
		Target:      m.Target,
		Kind:        m.Kind,
		BacklogPeak: m.BacklogPeak,
		Detail:      m.Detail,
	}
	// The timeline writes -1 for "not reached".
	switch {
	case m.RecoverySeconds >= 0:
		f.RecoverySeconds = &m.RecoverySeconds
	case m.Err != nil:
		f.RecoveryNote = "the fault could not be applied"
	case m.NoBaseline:
		f.RecoveryNote = fmt.Sprintf("not observable: nothing completed in the %s before the fault, so there is no rate to recover to", timeline.BaselineWindow)
	default:
		f.RecoveryNote = fmt.Sprintf("not recovered: the completion rate was not back to %.0f%% of its rate before the fault by the end of the run", timeline.RecoveredFraction*100)
	}
	switch {
	case m.DetectSeconds >= 0:
		f.DetectSeconds = &m.DetectSeconds
	case m.Err != nil:
		f.DetectNote = "the fault could not be applied"
	default:
		f.DetectNote = "not seen: no failed attempt or breaker opening during the fault and its recovery"
	}
	if m.Err != nil {
		f.Error = m.Err.Error()
	}
	return f
}
