package scenarios

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/worker"
)

// Start-up costs of a variant in the plan's estimate, measured on the
// project's 2-core machine (docs/scenarios.md, "bench plan").
const (
	// PlanNodeBoot is a private rabbitmq-server node's boot, paid per variant
	// when the run manages its broker.
	PlanNodeBoot = 5 * time.Second
	// PlanWorkersUp is spawning the worker processes until they consume.
	PlanWorkersUp = time.Second
)

// Plan is what a run of the scenario would do, worked out before anything
// starts (`bench plan`). Durations are estimates from the scenario alone.
type Plan struct {
	Variants []VariantPlan
	// Estimate and Max add up the variants: Max lets every drain run to its
	// drain_timeout.
	Estimate, Max time.Duration
}

// VariantPlan is one variant's part of the plan.
type VariantPlan struct {
	Name   string
	Params map[string]any
	Jobs   int64
	Phases []PhasePlan
	Faults []FaultPlan
	Load   time.Duration // the phases' schedule; spikes count 0
	// Capacity is the jobs per second the workers can finish, from the
	// handler's mean time, the expected attempts per job, the concurrency and
	// the rate limit; +Inf when the handler takes no time.
	Capacity float64
	// Drain is the estimated time from the load's end until every job has
	// its outcome: the backlog the load leaves over Capacity, plus the
	// longest backoff of a retried job.
	Drain        time.Duration
	DrainTimeout time.Duration
	Startup      time.Duration // broker (when managed) and workers
	// Own describes workers.command ("2 × ./bin/w, white-box"); "" for the
	// simulated worker. Its pace is not known before it runs: Capacity is
	// +Inf and Drain 0.
	Own      string
	Estimate time.Duration // Startup + Load + min(Drain, DrainTimeout)
	Max      time.Duration // Startup + Load + DrainTimeout
	// Warnings are what the plan can already tell: a drain that will not
	// fit its timeout, a fault past the load.
	Warnings []string
}

// PhasePlan is one load phase on the variant's timeline.
type PhasePlan struct {
	Kind       string
	Start, End time.Duration // since the load started; equal for a spike
	Jobs       int64
	Detail     string // e.g. "200/s", "100/s → 1000/s", "10000 at once"
}

// FaultPlan is one fault on the variant's timeline.
type FaultPlan struct {
	At, Until time.Duration // equal for an instant fault
	Target    string
	What      string // the kind and its detail, e.g. "latency latency=1s"
}

// Plan works out the run. managed says whether each variant starts its own
// broker node (the caller knows the flags and the environment).
func (s *Scenario) Plan(managed bool) (Plan, error) {
	vs, err := s.Variants()
	if err != nil {
		return Plan{}, err
	}
	var p Plan
	for _, v := range vs {
		vp := planVariant(v.Scenario, managed)
		vp.Name, vp.Params = v.Name, v.Params
		p.Variants = append(p.Variants, vp)
		p.Estimate += vp.Estimate
		p.Max += vp.Max
	}
	return p, nil
}

func planVariant(s *Scenario, managed bool) VariantPlan {
	vp := VariantPlan{Jobs: s.TotalJobs(), DrainTimeout: s.DrainTimeout, Startup: PlanWorkersUp}
	if managed {
		vp.Startup += PlanNodeBoot
	}
	var at time.Duration
	for _, ph := range s.Load {
		pp := PhasePlan{Kind: ph.Kind, Start: at, End: at + ph.Duration(), Jobs: ph.Count()}
		switch ph.Kind {
		case loadgen.KindSpike:
			pp.Detail = fmt.Sprintf("%d at once", ph.Jobs)
		case loadgen.KindSteady:
			pp.Detail = fmt.Sprintf("%g/s", ph.Rate)
		case loadgen.KindRamp:
			pp.Detail = fmt.Sprintf("%g/s → %g/s", ph.From, ph.To)
		}
		vp.Phases = append(vp.Phases, pp)
		at = pp.End
	}
	vp.Load = at
	for _, f := range s.Faults {
		fp := FaultPlan{At: f.At, Until: f.At + f.Hold(), Target: f.Target, What: f.Kind()}
		if d := f.Detail(); d != "" {
			fp.What += " " + d
		}
		if f.At > vp.Load {
			vp.Warnings = append(vp.Warnings, fmt.Sprintf("the %s fault at %s comes after the load (%s): it hits the drain", fp.What, f.At, vp.Load))
		}
		vp.Faults = append(vp.Faults, fp)
	}
	vp.Capacity = capacity(s)
	if s.OwnWorker() {
		mode := "white-box"
		if s.BlackBox() {
			mode = "black-box"
		}
		vp.Own = fmt.Sprintf("%d × %s, %s", s.Workers.Processes, strings.Join(s.Workers.Command, " "), mode)
		vp.Capacity = math.Inf(1)
	}
	if !math.IsInf(vp.Capacity, 1) {
		left := float64(vp.Jobs) - vp.Capacity*vp.Load.Seconds()
		if left > 0 {
			vp.Drain = time.Duration(left / vp.Capacity * float64(time.Second))
		}
	}
	if s.Job.FailRate > 0 {
		vp.Drain += longestBackoff(s.Workers.Retry)
	}
	drain := vp.Drain
	if drain > vp.DrainTimeout {
		drain = vp.DrainTimeout
		vp.Warnings = append(vp.Warnings, fmt.Sprintf("the drain needs about %s, more than drain_timeout %s: jobs still queued then count as lost", vp.Drain.Round(time.Second), vp.DrainTimeout))
	}
	vp.Estimate = vp.Startup + vp.Load + drain
	vp.Max = vp.Startup + vp.Load + vp.DrainTimeout
	return vp
}

// capacity estimates the jobs per second the variant's workers finish.
func capacity(s *Scenario) float64 {
	w := s.Workers
	attempt := s.Job.Work.MeanDuration() + time.Duration(s.Job.DependencyCalls)*s.Dependency.Latency
	// Attempt k+1 runs when the first k all failed retriably.
	f, n := s.Job.FailRate, w.Retry.MaxAttempts
	attempts := float64(n)
	if f < 1 {
		attempts = (1 - math.Pow(f, float64(n))) / (1 - f)
	}
	perProcess := math.Inf(1)
	if attempt > 0 {
		perProcess = float64(w.Concurrency) / (attempt.Seconds() * attempts)
	}
	if w.RateLimit > 0 {
		perProcess = math.Min(perProcess, w.RateLimit/attempts)
	}
	return perProcess * float64(w.Processes)
}

// longestBackoff is the delays of a job that uses every attempt.
func longestBackoff(p worker.RetryPolicy) time.Duration {
	var total time.Duration
	d := p.MinDelay
	for range p.MaxAttempts - 1 {
		d = min(d, p.MaxDelay)
		total += d
		d *= 2
	}
	return total
}
