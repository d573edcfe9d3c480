package runner

import (
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
	t := timeline.Targets{Workers: v.procs}
	if v.env.depProxy != nil {
		t.DependencyProxy = v.env.depProxy
	}
	if v.env.workerProxy != nil {
		t.BrokerProxies = []timeline.ProxyTarget{v.env.workerProxy, v.env.genProxy}
	}
	if v.env.ctl != nil {
		t.Broker = v.env.ctl
	}
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

// resultFault is m in result.json's form.
func resultFault(m timeline.Metrics) report.Fault {
	f := report.Fault{
		AtS:             m.AtS,
		UntilS:          m.UntilS,
		Target:          m.Target,
		Kind:            m.Kind,
		RecoverySeconds: m.RecoverySeconds,
		DetectSeconds:   m.DetectSeconds,
		BacklogPeak:     m.BacklogPeak,
		Detail:          m.Detail,
	}
	if m.NoBaseline {
		f.Detail += " (no baseline rate before the fault)"
	}
	if m.Err != nil {
		f.Error = m.Err.Error()
	}
	return f
}
