package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/benchmq/bench/internal/maxrate"
	"github.com/benchmq/bench/report/gate"
)

// RateTolerance is how far below the SLO's rate a cell's completion rate may
// fall and still count as sustaining it: the drain after the load and the
// first second's ramp-up count in the rate's denominator.
const RateTolerance = 0.10

// SLO is a scenario's service level objective: the rate a configuration must
// sustain and a target per metric of the metric table. A cell meets it when
// every objective holds; a miss is a verdict, not a failed gate.
type SLO struct {
	Rate       float64     `json:"rate,omitempty"` // jobs/s each cell must complete; 0: none
	Objectives []Objective `json:"objectives,omitempty"`
}

// Objective is one metric's target. Its direction comes from the metric: a
// lower-is-better metric must be at most Target, a higher-is-better one at
// least Target.
type Objective struct {
	Metric string  `json:"metric"` // canonical metric name
	Target float64 `json:"target"` // in the metric's base unit
	Source string  `json:"source"` // the target as written, e.g. "250ms"
}

// SLOVerdict is one cell's standing against the SLO.
type SLOVerdict struct {
	Met    bool       `json:"met"`
	Checks []SLOCheck `json:"checks"`
	// Reason says why the cell misses: every missed objective, by how much.
	Reason string `json:"reason,omitempty"`
	// Caveat qualifies the figures: the generator fell behind, so latencies
	// are the harness's, or it never offered the SLO's rate.
	Caveat string `json:"caveat,omitempty"`

	// The cell's cost, for the ordering of the cells that meet the SLO.
	Processes   int `json:"processes"`
	Concurrency int `json:"concurrency"`
	// CoresAtRate is the worker CPU the SLO's rate takes (cpu_per_1k_jobs ×
	// rate / 1000), and InstancesAtRate the worker processes that is at this
	// cell's peak cores per process; 0 when not measured.
	CoresAtRate     float64 `json:"cores_at_rate,omitempty"`
	InstancesAtRate int     `json:"instances_at_rate,omitempty"`
}

// SLOCheck is one objective judged in one cell.
type SLOCheck struct {
	Metric   string  `json:"metric"`
	Target   float64 `json:"target"`
	Value    float64 `json:"value"`
	Measured bool    `json:"measured"` // false: the metric has no value in this cell, which misses
	Met      bool    `json:"met"`
	// Margin is the headroom as a share of the target: 0.35 is 35 % to
	// spare, -0.2 a miss by 20 %.
	Margin float64 `json:"margin"`
	Text   string  `json:"text"` // for people: "p99(end_to_end) 163 ms ≤ 250 ms (35 % headroom)"
}

// rateMetric judges the SLO's rate.
const rateMetric = "complete_per_s"

// Judge holds one cell against the SLO. processes and concurrency are the
// cell's configuration, recorded for the ordering by cost.
func (s *SLO) Judge(v *Variant, processes, concurrency int) *SLOVerdict {
	out := &SLOVerdict{Met: true, Processes: processes, Concurrency: concurrency}
	lookup := Lookup(v)
	var misses []string
	add := func(c SLOCheck) {
		out.Checks = append(out.Checks, c)
		if !c.Met {
			out.Met = false
			misses = append(misses, c.Text)
		}
	}
	if s.Rate > 0 {
		got, _ := lookup(rateMetric)
		c := SLOCheck{Metric: rateMetric, Target: s.Rate, Value: got, Measured: true,
			Margin: (got - s.Rate) / s.Rate}
		c.Met = got >= s.Rate*(1-RateTolerance)
		c.Text = fmt.Sprintf("completes %s of %s", FormatMetric(rateMetric, got), FormatMetric(rateMetric, s.Rate))
		if !c.Met {
			c.Text += fmt.Sprintf(" (falls behind by %.0f %%)", -c.Margin*100)
		}
		add(c)
	}
	for _, o := range s.Objectives {
		add(checkObjective(o, lookup))
	}
	out.Reason = strings.Join(misses, "; ")
	out.Caveat = caveat(s, v)
	if per := lookupOr(lookup, "cpu_per_1k_jobs"); s.Rate > 0 && per > 0 {
		out.CoresAtRate = per * s.Rate / 1000
		if peak := v.Peak.WorkerCPUCores; peak > 0 {
			out.InstancesAtRate = int(math.Ceil(out.CoresAtRate / peak))
		}
	}
	return out
}

func checkObjective(o Objective, lookup func(string) (float64, bool)) SLOCheck {
	m, _ := LookupMetric(o.Metric)
	got, ok := lookup(o.Metric)
	c := SLOCheck{Metric: o.Metric, Target: o.Target, Value: got, Measured: ok}
	if !ok {
		c.Text = o.Metric + " was not measured"
		return c
	}
	op := "≤"
	if m.Better == Higher {
		op = "≥"
		c.Met = got >= o.Target
		c.Margin = relative(got-o.Target, o.Target)
	} else {
		c.Met = got <= o.Target
		c.Margin = relative(o.Target-got, o.Target)
	}
	c.Text = fmt.Sprintf("%s %s %s %s", o.Metric, FormatMetric(o.Metric, got), op, FormatMetric(o.Metric, o.Target))
	if !c.Met {
		c.Text = fmt.Sprintf("%s %s, target %s %s (%s)", o.Metric, FormatMetric(o.Metric, got), op, FormatMetric(o.Metric, o.Target), missBy(c.Margin, got, o.Target))
	} else {
		c.Text += fmt.Sprintf(" (%.0f %% headroom)", c.Margin*100)
	}
	return c
}

// missBy says how far a value misses its target: a share up to twice the
// target, a multiple beyond.
func missBy(margin, got, target float64) string {
	if margin < -1 && target > 0 && got > 0 {
		return fmt.Sprintf("%.0f× the target", got/target)
	}
	return fmt.Sprintf("misses by %.0f %%", -margin*100)
}

func relative(d, base float64) float64 {
	if base == 0 {
		if d >= 0 {
			return 0
		}
		return -1
	}
	return d / math.Abs(base)
}

func lookupOr(lookup func(string) (float64, bool), name string) float64 {
	v, _ := lookup(name)
	return v
}

// caveat says when a cell's figures do not measure the workers at the SLO's load.
func caveat(s *SLO, v *Variant) string {
	switch {
	case v.HarnessBound:
		return fmt.Sprintf("the load generator fell behind (%d late sends): latencies are the harness's, not the workers'", v.LateSends)
	case s.Rate > 0 && v.Throughput.PublishPerS < s.Rate*(1-RateTolerance):
		return fmt.Sprintf("the load offered %s, below the SLO's %s", FormatMetric(rateMetric, v.Throughput.PublishPerS), FormatMetric(rateMetric, s.Rate))
	}
	return ""
}

// Capacity is the answer to a capacity question: the cells that meet the
// SLO, cheapest first, and why each other one misses.
type Capacity struct {
	SLO SLO `json:"slo"`
	// Recommended is the cheapest cell that meets the SLO; "" when none does.
	Recommended string     `json:"recommended,omitempty"`
	Meeting     []CellCost `json:"meeting"` // cheapest first
	Missing     []CellMiss `json:"missing"` // in the scenario's order
	// Note qualifies the whole answer: no variant meets the SLO and the
	// load generator fell behind in every one of them.
	Note string `json:"note,omitempty"`
}

// CellCost is what a cell that meets the SLO costs.
type CellCost struct {
	Variant         string   `json:"variant"`
	CPUPer1kJobs    *float64 `json:"cpu_per_1k_jobs"`      // worker CPU-seconds per 1,000 jobs; null when not measured
	Slots           int      `json:"slots"`                // processes × concurrency
	PeakRSSBytes    int64    `json:"peak_rss_bytes"`       // of one process
	PeakCores       float64  `json:"peak_cores,omitempty"` // of the busiest process
	InstancesAtRate int      `json:"instances_at_rate,omitempty"`
	Caveat          string   `json:"caveat,omitempty"`
}

// CellMiss is a cell that misses the SLO, and why.
type CellMiss struct {
	Variant string `json:"variant"`
	Reason  string `json:"reason"`
	Caveat  string `json:"caveat,omitempty"`
}

// PlanCapacity orders the judged cells of r by cost: worker CPU-seconds per
// 1,000 jobs (unmeasured last), then processes × concurrency, then peak RSS.
// nil when the result has no SLO, or searched each variant's max rate
// (each step was judged at its own rate: no cell to rank at one).
func PlanCapacity(r *Result) *Capacity {
	if r.SLO == nil || slices.ContainsFunc(r.Variants, func(v Variant) bool { return v.Search != nil }) {
		return nil
	}
	c := &Capacity{SLO: *r.SLO, Meeting: []CellCost{}, Missing: []CellMiss{}}
	for i := range r.Variants {
		v := &r.Variants[i]
		switch {
		case v.SLO == nil:
		case v.SLO.Met:
			cc := CellCost{Variant: v.Name, Slots: v.SLO.Processes * v.SLO.Concurrency, PeakRSSBytes: v.Peak.WorkerRSSBytes,
				PeakCores: v.Peak.WorkerCPUCores, InstancesAtRate: v.SLO.InstancesAtRate, Caveat: v.SLO.Caveat}
			if x, ok := Lookup(v)("cpu_per_1k_jobs"); ok {
				cc.CPUPer1kJobs = &x
			}
			c.Meeting = append(c.Meeting, cc)
		default:
			reason := v.SLO.Reason
			if v.Error != "" {
				reason = cmp.Or(reason, "the variant failed: "+v.Error)
			}
			c.Missing = append(c.Missing, CellMiss{Variant: v.Name, Reason: reason, Caveat: v.SLO.Caveat})
		}
	}
	slices.SortStableFunc(c.Meeting, compareCost)
	if len(c.Meeting) > 0 {
		c.Recommended = c.Meeting[0].Variant
	}
	if len(c.Meeting) == 0 && len(c.Missing) > 0 && !slices.ContainsFunc(c.Missing, func(m CellMiss) bool { return m.Caveat == "" }) {
		c.Note = "the load generator fell behind in every variant: the machine running bench could not offer the SLO's load, so these misses are the harness's as much as the workers'; run bench on a machine of its own, or spread the load over several"
	}
	return c
}

func compareCost(a, b CellCost) int {
	switch {
	case a.CPUPer1kJobs != nil && b.CPUPer1kJobs == nil:
		return -1
	case a.CPUPer1kJobs == nil && b.CPUPer1kJobs != nil:
		return 1
	case a.CPUPer1kJobs != nil:
		if c := cmp.Compare(*a.CPUPer1kJobs, *b.CPUPer1kJobs); c != 0 {
			return c
		}
	}
	return cmp.Or(cmp.Compare(a.Slots, b.Slots), cmp.Compare(a.PeakRSSBytes, b.PeakRSSBytes))
}

// Describe renders the SLO for people: "1500/s, p99(end_to_end) ≤ 250ms".
func (s SLO) Describe() string {
	var parts []string
	if s.Rate > 0 {
		parts = append(parts, FormatMetric(rateMetric, s.Rate))
	}
	for _, o := range s.Objectives {
		op := "≤"
		if m, _ := LookupMetric(o.Metric); m.Better == Higher {
			op = "≥"
		}
		parts = append(parts, o.Metric+" "+op+" "+o.Source)
	}
	return strings.Join(parts, ", ")
}

// ObjectiveKind returns the kind of a metric an objective may name, and an
// error naming the metrics it may name when it cannot: an objective needs a
// metric with a better direction.
func ObjectiveKind(name string) (canonical string, k gate.Kind, err error) {
	m, ok := LookupMetric(name)
	if !ok || m.Better == Neither {
		return "", 0, fmt.Errorf("%s is not a metric an objective can name; want rate or one of %s", name, strings.Join(ObjectiveMetrics(), ", "))
	}
	return m.Name, m.Kind, nil
}

// ObjectiveMetrics lists the metrics an SLO objective may name.
func ObjectiveMetrics() []string {
	var out []string
	for _, m := range metrics {
		if m.Better != Neither {
			out = append(out, m.Name)
		}
	}
	return out
}

// DescribeCost renders a meeting cell's cost for people.
func DescribeCost(c CellCost, rate float64) string {
	var parts []string
	if c.CPUPer1kJobs != nil {
		parts = append(parts, fmt.Sprintf("%.3f CPU-s per 1k jobs", *c.CPUPer1kJobs))
	} else {
		parts = append(parts, "CPU not measured")
	}
	parts = append(parts, fmt.Sprintf("%d handlers (processes × concurrency)", c.Slots), "peak RSS "+FormatMetric("peak(worker_rss)", float64(c.PeakRSSBytes)))
	if c.PeakCores > 0 {
		parts = append(parts, fmt.Sprintf("peak %.2f cores/process", c.PeakCores))
	}
	if c.InstancesAtRate > 0 {
		unit := "instances"
		if c.InstancesAtRate == 1 {
			unit = "instance"
		}
		parts = append(parts, fmt.Sprintf("%d worker %s for %s", c.InstancesAtRate, unit, FormatMetric(rateMetric, rate)))
	}
	s := strings.Join(parts, ", ")
	if c.Caveat != "" {
		s += " (caveat: " + c.Caveat + ")"
	}
	return s
}

// Search is a variant's max-rate search: every step (a run at one rate), the
// highest rate that met the SLO, why the search stopped and the knee of the
// rate-vs-p99 curve. The variant's other figures are those of the step at
// the max rate (the last step when none met).
type Search struct {
	From           float64 `json:"from"`
	To             float64 `json:"to"`
	SettleSeconds  float64 `json:"settle_s"`
	MeasureSeconds float64 `json:"measure_s"`
	maxrate.Result
}
