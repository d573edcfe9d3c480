package perf

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// Report holds the figures of a run. Rates are msgs/s, memory is bytes; every
// Spread is over the run's repetitions, and every ratio is taken within a
// repetition before the spread is taken.
type Report struct {
	Broker   BrokerInfo `json:"broker"`
	Repeat   int        `json:"repeat"`
	Messages int64      `json:"messages"`
	Size     int        `json:"size_bytes"`

	Consume  []*ConsumeFigure  `json:"consume,omitempty"`
	Publish  *PublishFigure    `json:"publish,omitempty"`
	Spike    []*SpikeFigure    `json:"spike,omitempty"`
	Ledger   *LedgerFigure     `json:"ledger,omitempty"`
	Pipeline *PipelineFigure   `json:"pipeline,omitempty"`
	Accuracy []*AccuracyFigure `json:"accuracy,omitempty"`
	Targets  []Target          `json:"targets"`

	SpikeJobs int64 `json:"spike_jobs"`
	SpikeSize int   `json:"spike_size_bytes"`
}

// AccuracyFigure is the load generator's accuracy at one steady rate: sends
// later than the late threshold (10 ms) as a fraction of all, and the lateness
// distribution in ms; each over the repetitions.
type AccuracyFigure struct {
	Rate         float64 `json:"rate"`
	Seconds      float64 `json:"seconds"`
	Sent         Spread  `json:"sent"`
	Achieved     Spread  `json:"achieved_per_s"`
	LateFraction Spread  `json:"late_fraction"`
	P50MS        Spread  `json:"p50_ms"`
	P99MS        Spread  `json:"p99_ms"`
	P999MS       Spread  `json:"p999_ms"`
	MaxMS        Spread  `json:"max_ms"`

	sent, achieved, late, p50, p99, p999, max []float64
}

// PipelineFigure compares `bench run` with the raw publish+consume pair doing
// the same broker work (PipeBench, PipeRaw).
type PipelineFigure struct {
	Jobs        int64 `json:"jobs"`
	Concurrency int   `json:"concurrency"`
	Prefetch    int   `json:"prefetch"`
	// Rates are completed jobs per second; ClientCPU the CPU µs per job of the
	// client processes (runner + workers for bench, the pair's process for
	// raw); BrokerCPU the broker's CPU µs per job over each run's whole life.
	Rates     map[string]Spread `json:"rates"`
	ClientCPU map[string]Spread `json:"client_cpu_us_per_job"`
	BrokerCPU map[string]Spread `json:"broker_cpu_us_per_job,omitempty"`
	// BenchOverRaw is the completion rate's ratio, CPUOverRaw the client CPU's.
	BenchOverRaw Spread `json:"bench_over_raw"`
	CPUOverRaw   Spread `json:"cpu_over_raw"`

	rate, cpu, broker map[string][]float64
}

// BrokerInfo says what was measured against.
type BrokerInfo struct {
	Version string `json:"version,omitempty"`
	Note    string `json:"note,omitempty"`
}

// ConsumeFigure is one consume cell: msgs/s of each implementation and the
// runtime's ratios to the others.
type ConsumeFigure struct {
	Cell
	Rates           map[string]Spread `json:"rates"`
	RuntimeOverRaw  Spread            `json:"runtime_over_raw"`
	RuntimeOverPeer *Spread           `json:"runtime_over_peer,omitempty"`
	// CPU is each consumer process's CPU time per message in µs, and
	// RuntimeCPUOverRaw the runtime's relative to the raw loop's (lower is
	// better): the consumers' own cost, which the broker's pace does not hide.
	CPU               map[string]Spread `json:"cpu_us_per_msg"`
	RuntimeCPUOverRaw Spread            `json:"runtime_cpu_over_raw"`
	// BrokerCPU is the broker's CPU time per message while each consumer ran
	// (Config.BrokerCPU): it tells a slow broker from a slow consumer.
	BrokerCPU map[string]Spread `json:"broker_cpu_us_per_msg,omitempty"`

	values, cpu, broker map[string][]float64
}

// PublishFigure compares the load generator with the raw publishers.
type PublishFigure struct {
	Rates             map[string]Spread `json:"rates"`
	GeneratorOverRaw  Spread            `json:"loadgen_over_raw"`
	GeneratorOverBare Spread            `json:"loadgen_over_raw_bare"`
	// BrokerCPU is the broker's CPU time per message while each publisher ran.
	BrokerCPU map[string]Spread `json:"broker_cpu_us_per_msg,omitempty"`

	values, broker map[string][]float64
}

// SpikeFigure is the peak RSS of a raw consumer and of the runtime holding the
// spike at one prefetch.
type SpikeFigure struct {
	Prefetch int `json:"prefetch"`
	// PeakRSS is the highest VmRSS sampled while the consumer ran; HWM is the
	// kernel's high-water mark (VmHWM) the consumer read at its end.
	PeakRSS map[string]Spread `json:"peak_rss_bytes"`
	HWM     map[string]Spread `json:"hwm_bytes"`
	// Idle is the consumer's RSS before it connected: the part of the peak that
	// is the binary, not the jobs.
	Idle           map[string]Spread `json:"idle_rss_bytes"`
	RuntimeOverRaw Spread            `json:"runtime_over_raw"`

	rss, hwm, idle map[string][]float64
}

// LedgerFigure is the ledger's memory per job.
type LedgerFigure struct {
	Jobs int64 `json:"jobs"`
	// HeapPerJob is the live heap the ledger holds after a GC; AllocPerJob what it
	// allocated in all; StatePerJob what it says it holds (Ledger.Bytes).
	HeapPerJob  Spread `json:"heap_bytes_per_job"`
	AllocPerJob Spread `json:"alloc_bytes_per_job"`
	StatePerJob Spread `json:"state_bytes_per_job"`

	heap, alloc, state []float64
}

// Target is one of the targets checked against the medians.
type Target struct {
	Name  string  `json:"name"`
	Want  string  `json:"want"`
	Value float64 `json:"value"`
	Met   bool    `json:"met"`
	// MetBy is how many of the Of single values (repetitions, or rounds for the
	// publishers) meet the target on their own.
	MetBy int `json:"met_by"`
	Of    int `json:"of"`
}

func newReport(c *Config) *Report {
	r := &Report{Broker: BrokerInfo{Note: c.BrokerNote}, Repeat: c.Repeat, Messages: c.Messages, Size: c.Size, SpikeJobs: c.SpikeJobs, SpikeSize: c.SpikeSize}
	if c.has(SectionConsume) {
		for _, cell := range c.cells() {
			r.Consume = append(r.Consume, &ConsumeFigure{Cell: cell, values: map[string][]float64{}, cpu: map[string][]float64{}, broker: map[string][]float64{}})
		}
	}
	if c.has(SectionPublish) {
		r.Publish = &PublishFigure{values: map[string][]float64{}, broker: map[string][]float64{}}
	}
	if c.has(SectionSpike) {
		for _, p := range []int{0, 10} {
			r.Spike = append(r.Spike, &SpikeFigure{Prefetch: p, rss: map[string][]float64{}, hwm: map[string][]float64{}, idle: map[string][]float64{}})
		}
	}
	if c.has(SectionLedger) {
		r.Ledger = &LedgerFigure{Jobs: c.LedgerJobs}
	}
	if c.has(SectionAccuracy) {
		for _, rate := range c.AccuracyRates {
			r.Accuracy = append(r.Accuracy, &AccuracyFigure{Rate: rate, Seconds: c.AccuracyFor.Seconds()})
		}
	}
	if c.has(SectionPipeline) {
		r.Pipeline = &PipelineFigure{Jobs: c.PipelineJobs, Concurrency: c.PipelineConcurrency, Prefetch: c.PipelinePrefetch,
			rate: map[string][]float64{}, cpu: map[string][]float64{}, broker: map[string][]float64{}}
	}
	return r
}

// put stores v as repetition rep's value, so that ratios pair the right runs.
func put(m map[string][]float64, key string, rep int, v float64) {
	s := m[key]
	for len(s) <= rep {
		s = append(s, math.NaN())
	}
	s[rep] = v
	m[key] = s
}

func (r *Report) addConsume(cell Cell, impl string, rep int, rate, cpuPerMsg, brokerCPU float64) {
	for _, f := range r.Consume {
		if f.Cell == cell {
			put(f.values, impl, rep, rate)
			put(f.cpu, impl, rep, cpuPerMsg)
			putKnown(f.broker, impl, rep, brokerCPU)
		}
	}
}

func (r *Report) addPublish(impl string, rep int, rate, brokerCPU float64) {
	put(r.Publish.values, impl, rep, rate)
	putKnown(r.Publish.broker, impl, rep, brokerCPU)
}

// putKnown is put for a figure that may be unknown (NaN): unknown figures leave
// the map empty, so that the report leaves them out.
func putKnown(m map[string][]float64, key string, rep int, v float64) {
	if !math.IsNaN(v) {
		put(m, key, rep, v)
	}
}

func (r *Report) addSpike(impl string, prefetch, rep int, m spikeFigure) {
	for _, f := range r.Spike {
		if f.Prefetch == prefetch {
			put(f.rss, impl, rep, float64(m.sampled))
			put(f.hwm, impl, rep, float64(m.hwm))
			put(f.idle, impl, rep, float64(m.idle))
		}
	}
}

func (r *Report) addPipeline(impl string, rep int, f pipelineFigure) {
	p := r.Pipeline
	put(p.rate, impl, rep, f.rate)
	put(p.cpu, impl, rep, f.clientCPU)
	putKnown(p.broker, impl, rep, f.brokerCPU)
}

func (r *Report) addAccuracy(_ int, f accuracyFigure) {
	for _, a := range r.Accuracy {
		if a.Rate == f.rate {
			a.sent = append(a.sent, float64(f.sent))
			a.achieved = append(a.achieved, f.achieved)
			a.late = append(a.late, float64(f.late)/float64(max(f.sent, 1)))
			a.p50, a.p99, a.p999, a.max = append(a.p50, f.p50), append(a.p99, f.p99), append(a.p999, f.p999), append(a.max, f.max)
		}
	}
}

func (r *Report) addLedger(m ledgerFigure) {
	l := r.Ledger
	l.heap = append(l.heap, m.heapPerJob)
	l.alloc = append(l.alloc, m.allocPerJob)
	l.state = append(l.state, m.statePerJob)
}

func spreads(m map[string][]float64) map[string]Spread {
	out := make(map[string]Spread, len(m))
	for k, v := range m {
		out[k] = Summarize(finite(v))
	}
	return out
}

func finite(vs []float64) []float64 {
	return slices.DeleteFunc(slices.Clone(vs), func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
}

func ratio(m map[string][]float64, a, b string) Spread {
	return Summarize(finite(Ratios(m[a], m[b])))
}

// Targets of issue 7, on the medians of the within-run ratios.
const (
	targetConsumeVsRaw   = 0.95
	targetConsumeVsPeer  = 1.0
	targetPublishVsRaw   = 0.95
	targetSpikeRSSVsRaw  = 2.0
	targetLedgerPerJob   = 16.0
	targetSpikeRSSAtPref = 10
	// Issue 15: the whole pipeline against the raw pair.
	targetPipelineRate = 0.9
	targetPipelineCPU  = 1.5
	// Issue 15: one generator process at 5,000/s, fewer than 1 % of sends
	// later than 10 ms.
	targetAccuracyRate = 5000
	targetAccuracyLate = 0.01
)

// finish computes the spreads and ratios and checks the targets.
func (r *Report) finish() {
	for _, f := range r.Consume {
		f.Rates, f.CPU = spreads(f.values), spreads(f.cpu)
		if len(f.broker) > 0 {
			f.BrokerCPU = spreads(f.broker)
		}
		f.RuntimeOverRaw = ratio(f.values, ImplRuntime, ImplRaw)
		f.RuntimeCPUOverRaw = ratio(f.cpu, ImplRuntime, ImplRaw)
		if _, ok := f.values[ImplPeer]; ok {
			s := ratio(f.values, ImplRuntime, ImplPeer)
			f.RuntimeOverPeer = &s
		}
		if f.Prefetch >= 10 && len(f.RuntimeOverRaw.Values) > 0 {
			r.check(fmt.Sprintf("consume runtime/raw prefetch %d concurrency %d", f.Prefetch, f.Concurrency),
				f.RuntimeOverRaw, targetConsumeVsRaw, true)
		}
		if f.RuntimeOverPeer != nil && len(f.RuntimeOverPeer.Values) > 0 {
			r.check(fmt.Sprintf("consume runtime/watermill prefetch %d concurrency %d", f.Prefetch, f.Concurrency),
				*f.RuntimeOverPeer, targetConsumeVsPeer, true)
		}
	}
	if p := r.Publish; p != nil {
		p.Rates = spreads(p.values)
		if len(p.broker) > 0 {
			p.BrokerCPU = spreads(p.broker)
		}
		p.GeneratorOverRaw = ratio(p.values, PubGenerator, PubRaw)
		p.GeneratorOverBare = ratio(p.values, PubGenerator, PubRawBare)
		r.check("publish loadgen/raw (same messages)", p.GeneratorOverRaw, targetPublishVsRaw, true)
	}
	for _, f := range r.Spike {
		f.PeakRSS, f.HWM, f.Idle = spreads(f.rss), spreads(f.hwm), spreads(f.idle)
		f.RuntimeOverRaw = ratio(f.rss, ImplRuntime, ImplRaw)
		if f.Prefetch == targetSpikeRSSAtPref {
			r.check(fmt.Sprintf("spike peak RSS runtime/raw prefetch %d", f.Prefetch), f.RuntimeOverRaw, targetSpikeRSSVsRaw, false)
		}
	}
	if p := r.Pipeline; p != nil {
		p.Rates, p.ClientCPU = spreads(p.rate), spreads(p.cpu)
		if len(p.broker) > 0 {
			p.BrokerCPU = spreads(p.broker)
		}
		p.BenchOverRaw = ratio(p.rate, PipeBench, PipeRaw)
		p.CPUOverRaw = ratio(p.cpu, PipeBench, PipeRaw)
		r.check("pipeline completion bench/raw", p.BenchOverRaw, targetPipelineRate, true)
		r.check("pipeline client CPU per job bench/raw", p.CPUOverRaw, targetPipelineCPU, false)
	}
	for _, a := range r.Accuracy {
		a.Sent, a.Achieved, a.LateFraction = Summarize(a.sent), Summarize(a.achieved), Summarize(a.late)
		a.P50MS, a.P99MS, a.P999MS, a.MaxMS = Summarize(a.p50), Summarize(a.p99), Summarize(a.p999), Summarize(a.max)
		if a.Rate == targetAccuracyRate {
			r.check(fmt.Sprintf("generator sends later than 10 ms at %.0f/s (fraction)", a.Rate), a.LateFraction, targetAccuracyLate, false)
		}
	}
	if l := r.Ledger; l != nil {
		l.HeapPerJob, l.AllocPerJob, l.StatePerJob = Summarize(l.heap), Summarize(l.alloc), Summarize(l.state)
		r.check(fmt.Sprintf("ledger heap bytes/job at %d jobs", l.Jobs), l.HeapPerJob, targetLedgerPerJob, false)
	}
}

// check records a target on the median of s: ≥ want when atLeast, else ≤ want.
// A NaN (no measurement) misses. How many single values meet it is kept as
// well: on a noisy machine a median near the line is only as sure as that count.
func (r *Report) check(name string, s Spread, want float64, atLeast bool) {
	meets := func(v float64) bool { return v <= want }
	t := Target{Name: name, Value: s.Median, Want: fmt.Sprintf("≤ %g", want), Of: len(s.Values)}
	if atLeast {
		meets = func(v float64) bool { return v >= want }
		t.Want = fmt.Sprintf("≥ %g", want)
	}
	t.Met = meets(s.Median)
	for _, v := range s.Values {
		if meets(v) {
			t.MetBy++
		}
	}
	r.Targets = append(r.Targets, t)
}

// Missed returns the targets not met.
func (r *Report) Missed() []Target {
	var out []Target
	for _, t := range r.Targets {
		if !t.Met {
			out = append(out, t)
		}
	}
	return out
}

// consumeColumn is a ratio column of a consume table.
type consumeColumn struct {
	title string
	value func(*ConsumeFigure) Spread
}

// consumeTable prints one figure of every consume cell: a column per
// implementation (values formatted with format), then the ratio columns.
func (r *Report) consumeTable(p func(string, ...any), title string, impls []string,
	values func(*ConsumeFigure) map[string]Spread, format func(float64) string, ratios []consumeColumn) {
	names := map[string]string{ImplRaw: "raw amqp091-go", ImplRuntime: "runtime", ImplPeer: "watermill-amqp"}
	p("%s\nprefetch\tconcurrency\t", title)
	for _, impl := range impls {
		p("%s\t", names[impl])
	}
	for _, c := range ratios {
		p("%s\t", c.title)
	}
	p("\n")
	for _, f := range r.Consume {
		p("%d\t%d\t", f.Prefetch, f.Concurrency)
		for _, impl := range impls {
			p("%s\t", values(f)[impl].format(format))
		}
		for _, c := range ratios {
			p("%s\t", c.value(f).format(formatRatio))
		}
		p("\n")
	}
	p("\n")
}

// Print writes the report as text tables: each figure as "median [min–max]".
func (r *Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	us := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	if r.Broker.Version != "" || r.Broker.Note != "" {
		p("broker: RabbitMQ %s", cmp.Or(r.Broker.Version, "(version unknown)"))
		if r.Broker.Note != "" {
			p(", %s", r.Broker.Note)
		}
		p("\n\n")
	}
	if len(r.Consume) > 0 {
		impls := []string{ImplRaw, ImplRuntime}
		if slices.ContainsFunc(r.Consume, func(f *ConsumeFigure) bool { return f.RuntimeOverPeer != nil }) {
			impls = append(impls, ImplPeer)
		}
		peerRatio := func(f *ConsumeFigure) Spread {
			if f.RuntimeOverPeer == nil {
				return Spread{}
			}
			return *f.RuntimeOverPeer
		}
		ratios := []consumeColumn{{"runtime/raw", func(f *ConsumeFigure) Spread { return f.RuntimeOverRaw }}}
		if len(impls) == 3 {
			ratios = append(ratios, consumeColumn{"runtime/watermill", peerRatio})
		}
		r.consumeTable(p, fmt.Sprintf("consume: %d × %d B persistent messages waiting, manual ack per message; msgs/s, median [min–max] of %d",
			r.Messages, r.Size, r.Repeat), impls, func(f *ConsumeFigure) map[string]Spread { return f.Rates }, formatRate, ratios)
		r.consumeTable(p, fmt.Sprintf("consume: CPU time of the consumer process per message, µs, median [min–max] of %d (lower is better)", r.Repeat),
			impls, func(f *ConsumeFigure) map[string]Spread { return f.CPU }, us,
			[]consumeColumn{{"runtime/raw", func(f *ConsumeFigure) Spread { return f.RuntimeCPUOverRaw }}})
		if slices.ContainsFunc(r.Consume, func(f *ConsumeFigure) bool { return f.BrokerCPU != nil }) {
			r.consumeTable(p, fmt.Sprintf("consume: CPU time of the broker per message while each consumer ran, µs, median [min–max] of %d", r.Repeat),
				impls, func(f *ConsumeFigure) map[string]Spread { return f.BrokerCPU }, us, nil)
		}
	}
	if f := r.Publish; f != nil {
		p("publish with confirms (window %d): %d × %d B persistent; msgs/s, median [min–max] of %d\n", defaultWindow, r.Messages, r.Size, len(f.GeneratorOverRaw.Values))
		p("raw (generator's headers)\traw (body only)\tload generator\tloadgen/raw\tloadgen/raw-bare\t\n")
		p("%s\t%s\t%s\t%s\t%s\t\n", f.Rates[PubRaw].format(formatRate), f.Rates[PubRawBare].format(formatRate),
			f.Rates[PubGenerator].format(formatRate), f.GeneratorOverRaw.format(formatRatio), f.GeneratorOverBare.format(formatRatio))
		if f.BrokerCPU != nil {
			p("%s\t%s\t%s\t(broker CPU µs/msg)\t\n", f.BrokerCPU[PubRaw].format(us), f.BrokerCPU[PubRawBare].format(us), f.BrokerCPU[PubGenerator].format(us))
		}
		p("\n")
	}
	if len(r.Spike) > 0 {
		p("spike: %d × %d B jobs waiting; peak worker RSS (sampled VmRSS), median [min–max] of %d; VmHWM and idle RSS medians\n", r.SpikeJobs, r.SpikeSize, r.Repeat)
		p("prefetch\traw consumer\t(hwm, idle)\truntime\t(hwm, idle)\truntime/raw\t\n")
		for _, f := range r.Spike {
			p("%d\t%s\t(%s, %s)\t%s\t(%s, %s)\t%s\t\n", f.Prefetch,
				f.PeakRSS[ImplRaw].format(formatBytes), formatBytes(f.HWM[ImplRaw].Median), formatBytes(f.Idle[ImplRaw].Median),
				f.PeakRSS[ImplRuntime].format(formatBytes), formatBytes(f.HWM[ImplRuntime].Median), formatBytes(f.Idle[ImplRuntime].Median),
				f.RuntimeOverRaw.format(formatRatio))
		}
		p("\n")
	}
	if f := r.Pipeline; f != nil {
		p("pipeline: %d × %d B no-op jobs as one spike, 1 worker process, concurrency %d, prefetch %d, confirms; median [min–max] of %d\n",
			f.Jobs, r.Size, f.Concurrency, f.Prefetch, len(f.BenchOverRaw.Values))
		p("\traw amqp091-go pair\tbench run\tbench/raw\t\n")
		p("completed jobs/s\t%s\t%s\t%s\t\n", f.Rates[PipeRaw].format(formatRate), f.Rates[PipeBench].format(formatRate), f.BenchOverRaw.format(formatRatio))
		p("client CPU µs/job\t%s\t%s\t%s\t\n", f.ClientCPU[PipeRaw].format(us), f.ClientCPU[PipeBench].format(us), f.CPUOverRaw.format(formatRatio))
		if f.BrokerCPU != nil {
			p("broker CPU µs/job\t%s\t%s\t\t\n", f.BrokerCPU[PipeRaw].format(us), f.BrokerCPU[PipeBench].format(us))
		}
		p("\n")
	}
	if len(r.Accuracy) > 0 {
		p("generator accuracy: steady %d B jobs into a queue nobody consumes, one generator process; median [min–max] of %d\n", r.Size, r.Repeat)
		p("rate/s\tseconds\tachieved/s\tlater than 10 ms\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\t\n")
		pct := func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }
		ms2 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
		for _, a := range r.Accuracy {
			p("%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", a.Rate, a.Seconds, a.Achieved.format(formatRate), a.LateFraction.format(pct),
				a.P50MS.format(ms2), a.P99MS.format(ms2), a.P999MS.format(ms2), a.MaxMS.format(ms2))
		}
		p("\n")
	}
	if l := r.Ledger; l != nil {
		perJob := func(v float64) string { return fmt.Sprintf("%.2f", v) }
		p("ledger: %d jobs published, confirmed and succeeded; bytes per job\n", l.Jobs)
		p("live heap\tallocated\tstate (Ledger.Bytes)\t\n")
		p("%s\t%s\t%s\t\n\n", l.HeapPerJob.format(perJob), l.AllocPerJob.format(perJob), l.StatePerJob.format(perJob))
	}
	if len(r.Targets) > 0 {
		p("targets (medians of within-run ratios):\n")
		for _, t := range r.Targets {
			mark := "ok"
			if !t.Met {
				mark = "MISSED"
			}
			p("  %s\t%s\t%.3f\t%s\t(%d of %d single values)\t\n", mark, t.Name, t.Value, t.Want, t.MetBy, t.Of)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print report: %w", err)
	}
	return nil
}
