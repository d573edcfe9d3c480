// Package perf is `bench perf`: it measures, side by side and in one run, how the
// harness's own parts compare with the plainest amqp091-go code doing the same
// work, so that a scenario's figures describe the system under test and not the
// harness. Every figure is repeated, with the implementations interleaved; only
// ratios taken within one repetition are compared, because the machine's load
// changes between repetitions.
//
// Consumers run as child processes (the caller's binary re-executed through
// Config.Child, and the watermill-amqp peer binary), so that each has a process
// of its own, as a worker has, and its memory can be read from /proc.
package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"slices"
	"time"
)

// Sections of a run, for Config.Only.
const (
	SectionConsume = "consume"
	SectionPublish = "publish"
	SectionSpike   = "spike"
	SectionLedger  = "ledger"
	// SectionPipeline is the whole pipeline: `bench run` against raw amqp091-go.
	SectionPipeline = "pipeline"
	// SectionAccuracy is the load generator's accuracy at steady rates.
	SectionAccuracy = "accuracy"
)

// Sections lists every section in run order.
func Sections() []string {
	return []string{SectionConsume, SectionPublish, SectionSpike, SectionPipeline, SectionAccuracy, SectionLedger}
}

// Defaults of the zero values of Config.
const (
	DefaultRepeat           = 5
	DefaultMessages         = 20_000
	DefaultSize             = 100
	DefaultSpikeJobs        = 10_000
	DefaultSpikeSize        = 4 << 10
	DefaultSpikeWork        = 2 * time.Millisecond
	DefaultSpikeConcurrency = 8
	DefaultLedgerJobs       = 1_000_000
	DefaultChildTimeout     = 2 * time.Minute
	DefaultPublishRounds    = 3
	// The whole pipeline: the no-op spike through one worker process.
	DefaultPipelineJobs        = 50_000
	DefaultPipelineConcurrency = 4
	DefaultPipelinePrefetch    = 100
	DefaultAccuracyFor         = 10 * time.Second

	defaultWindow = 1024 // unconfirmed publishes: the load generator's default
)

// DefaultErlArgs are the Erlang VM arguments of the private node `bench perf
// --managed` starts: one scheduler. With two, the broker's pace on a 2-core
// machine is bimodal (the same consumer at 17k or 40k msgs/s at random, by where
// the broker's processes land against the consumer's threads); with one, nearly
// every run is in the fast band and a few per cent can be told apart. RabbitMQ
// already starts its VM with +sbwt none (no busy-waiting schedulers).
const DefaultErlArgs = "+S 1:1"

// DefaultURL is the broker a developer machine of the project runs.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// ConfigError is Run's error when the Config is invalid; it lists every problem.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "invalid perf config: " + e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }

// DefaultAccuracyRates are the steady rates of the accuracy section: up to
// past what one generator process holds on a 2-core machine.
func DefaultAccuracyRates() []float64 { return []float64{2000, 5000, 8000, 12000} }

// DefaultPrefetches are the consume prefetch counts measured when
// Config.Prefetches is nil.
func DefaultPrefetches() []int { return []int{1, 10, 100} }

// Config configures a run. Zero values are the documented defaults.
type Config struct {
	// URL is the broker's AMQP URL (required). It reaches the children through
	// their environment and never appears in output.
	URL string
	// Child returns the command that runs ChildMain with args (required): the
	// caller's own binary, e.g. `bench perf --child ARGS...`.
	Child func(args []string) *exec.Cmd
	// Peer is the watermill-amqp peer binary (internal/perf/watermillpeer);
	// "" leaves watermill out.
	Peer string
	// Repeat is how many times every figure is measured; 0 means DefaultRepeat.
	Repeat int
	// Messages per consume run and per publish run; 0 means DefaultMessages.
	Messages int64
	// PublishRounds is how many times each publisher runs per repetition; 0
	// means DefaultPublishRounds.
	PublishRounds int
	// Size is the body size of consumed and published messages; 0 means
	// DefaultSize.
	Size int
	// Prefetches are the consume prefetch counts; each is measured with
	// concurrency 1 and with concurrency equal to the prefetch. nil means
	// DefaultPrefetches.
	Prefetches []int
	// SpikeJobs, SpikeSize, SpikeWork and SpikeConcurrency shape the memory
	// spike: SpikeJobs messages of SpikeSize bytes wait in the queue before a
	// consumer with SpikeConcurrency handlers that each sleep SpikeWork starts.
	// Zero values mean the Default constants.
	SpikeJobs        int64
	SpikeSize        int
	SpikeWork        time.Duration
	SpikeConcurrency int
	// Bench returns the command that runs `bench ARGS` (the pipeline section's
	// `bench run`); required when that section runs.
	Bench func(args []string) *exec.Cmd
	// PipelineJobs, PipelineConcurrency and PipelinePrefetch shape the pipeline
	// section: that many no-op jobs of Size bytes as one spike through one
	// worker process with that concurrency and prefetch. Zero values mean the
	// Default constants.
	PipelineJobs        int64
	PipelineConcurrency int
	PipelinePrefetch    int
	// AccuracyRates are the steady rates (jobs/s) at which the load generator's
	// lateness is measured, each for AccuracyFor; nil means
	// DefaultAccuracyRates, 0 DefaultAccuracyFor.
	AccuracyRates []float64
	AccuracyFor   time.Duration
	// LedgerJobs is the size of the ledger measurement; 0 means DefaultLedgerJobs.
	LedgerJobs int64
	// Only limits the run to these sections; nil means all of Sections().
	Only []string
	// ProfileDir, if set, makes every consumer child write a CPU and an
	// allocation profile there. Profiling slows the children: the figures of
	// such a run are for reading profiles, not for comparing.
	ProfileDir string
	// ChildTimeout bounds one child process; 0 means DefaultChildTimeout.
	ChildTimeout time.Duration
	// Progress receives a line per measurement; nil means none.
	Progress io.Writer
	// BrokerCPU, if set, returns the CPU time the broker has used so far (a
	// managed node's VM); every consume and publish run then also reports the
	// broker's CPU per message. nil leaves those figures out.
	BrokerCPU func() (time.Duration, error)
	// BrokerNote describes the broker in the report (how it was started); the
	// version is read from the server.
	BrokerNote string
}

func (c *Config) setDefaults() {
	if c.Repeat == 0 {
		c.Repeat = DefaultRepeat
	}
	if c.Messages == 0 {
		c.Messages = DefaultMessages
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.PublishRounds == 0 {
		c.PublishRounds = DefaultPublishRounds
	}
	if c.Prefetches == nil {
		c.Prefetches = DefaultPrefetches()
	}
	if c.SpikeJobs == 0 {
		c.SpikeJobs = DefaultSpikeJobs
	}
	if c.SpikeSize == 0 {
		c.SpikeSize = DefaultSpikeSize
	}
	if c.SpikeWork == 0 {
		c.SpikeWork = DefaultSpikeWork
	}
	if c.SpikeConcurrency == 0 {
		c.SpikeConcurrency = DefaultSpikeConcurrency
	}
	if c.LedgerJobs == 0 {
		c.LedgerJobs = DefaultLedgerJobs
	}
	if c.AccuracyRates == nil {
		c.AccuracyRates = DefaultAccuracyRates()
	}
	if c.AccuracyFor == 0 {
		c.AccuracyFor = DefaultAccuracyFor
	}
	if c.PipelineJobs == 0 {
		c.PipelineJobs = DefaultPipelineJobs
	}
	if c.PipelineConcurrency == 0 {
		c.PipelineConcurrency = DefaultPipelineConcurrency
	}
	if c.PipelinePrefetch == 0 {
		c.PipelinePrefetch = DefaultPipelinePrefetch
	}
	if c.Only == nil {
		c.Only = Sections()
	}
	if c.ChildTimeout == 0 {
		c.ChildTimeout = DefaultChildTimeout
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	}
	if c.Child == nil {
		errs = append(errs, errors.New("child: required"))
	}
	if c.Repeat < 1 {
		errs = append(errs, fmt.Errorf("repeat %d: must be at least 1", c.Repeat))
	}
	if c.Messages < 2 {
		errs = append(errs, fmt.Errorf("messages %d: must be at least 2", c.Messages))
	}
	if c.Size < 0 {
		errs = append(errs, fmt.Errorf("size %d: must not be negative", c.Size))
	}
	if c.PublishRounds < 0 {
		errs = append(errs, fmt.Errorf("publish rounds %d: must not be negative", c.PublishRounds))
	}
	for _, p := range c.Prefetches {
		if p < 1 {
			errs = append(errs, fmt.Errorf("prefetch %d: must be at least 1 (prefetch 0 is the spike's subject)", p))
		}
	}
	if c.SpikeJobs < 2 {
		errs = append(errs, fmt.Errorf("spike jobs %d: must be at least 2", c.SpikeJobs))
	}
	if c.SpikeSize < 0 {
		errs = append(errs, fmt.Errorf("spike size %d: must not be negative", c.SpikeSize))
	}
	if c.SpikeWork < 0 {
		errs = append(errs, fmt.Errorf("spike work %v: must not be negative", c.SpikeWork))
	}
	if c.SpikeConcurrency < 1 {
		errs = append(errs, fmt.Errorf("spike concurrency %d: must be at least 1", c.SpikeConcurrency))
	}
	if c.PipelineJobs < 2 {
		errs = append(errs, fmt.Errorf("pipeline jobs %d: must be at least 2", c.PipelineJobs))
	}
	if c.PipelineConcurrency < 1 || c.PipelinePrefetch < 1 {
		errs = append(errs, fmt.Errorf("pipeline concurrency %d, prefetch %d: must be at least 1", c.PipelineConcurrency, c.PipelinePrefetch))
	}
	if c.Bench == nil && c.has(SectionPipeline) {
		errs = append(errs, errors.New("bench: required for the pipeline section"))
	}
	for _, rate := range c.AccuracyRates {
		if rate <= 0 {
			errs = append(errs, fmt.Errorf("accuracy rate %g: must be positive", rate))
		}
	}
	if c.AccuracyFor < 0 {
		errs = append(errs, fmt.Errorf("accuracy for %v: must not be negative", c.AccuracyFor))
	}
	if c.LedgerJobs < 1 {
		errs = append(errs, fmt.Errorf("ledger jobs %d: must be at least 1", c.LedgerJobs))
	}
	for _, s := range c.Only {
		if !slices.Contains(Sections(), s) {
			errs = append(errs, fmt.Errorf("section %q: want one of %v", s, Sections()))
		}
	}
	if c.ChildTimeout < 0 {
		errs = append(errs, fmt.Errorf("child timeout %v: must not be negative", c.ChildTimeout))
	}
	return errors.Join(errs...)
}

func (c *Config) has(section string) bool { return slices.Contains(c.Only, section) }

// cells returns the consume cells: every prefetch with concurrency 1 and with
// concurrency matched to the prefetch (once when they coincide).
func (c *Config) cells() []Cell {
	var out []Cell
	for _, p := range c.Prefetches {
		out = append(out, Cell{Prefetch: p, Concurrency: 1})
		if p > 1 {
			out = append(out, Cell{Prefetch: p, Concurrency: p})
		}
	}
	return out
}

// Run measures what cfg selects and returns the figures. It fails on the first
// measurement that goes wrong (a consumer that does not get every message, a
// publish that is not confirmed): a figure from a broken run would mislead.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, &ConfigError{Err: err}
	}
	r := &run{cfg: &cfg, rep: newReport(&cfg)}
	if cfg.has(SectionConsume) || cfg.has(SectionPublish) || cfg.has(SectionSpike) || cfg.has(SectionPipeline) || cfg.has(SectionAccuracy) {
		a, err := dialAdmin(cfg.URL)
		if err != nil {
			return nil, r.redact(err)
		}
		// The figures are taken by the time it closes; a failed close changes none.
		defer func() { _ = a.close() }()
		r.admin = a
		r.rep.Broker.Version = a.version()
	}
	// Section by section, so that no section's aftermath on the broker (the
	// spike's 40 MiB through the message store) lands in another's figures;
	// within a section the implementations alternate, repetition by repetition.
	for _, section := range []func(context.Context, int) error{r.consumeRep, r.publishRep, r.spikeRep, r.pipelineRep, r.accuracyRep} {
		for i := range cfg.Repeat {
			if err := section(ctx, i); err != nil {
				return nil, r.redact(err)
			}
		}
	}
	if cfg.has(SectionLedger) {
		for range cfg.Repeat {
			r.rep.addLedger(measureLedger(cfg.LedgerJobs))
		}
	}
	r.rep.finish()
	return r.rep, nil
}

type run struct {
	cfg   *Config
	admin *admin
	rep   *Report
}

// brokerMeter returns a function that gives the broker's CPU µs per message since
// the meter was made, or NaN when the broker's CPU is not known.
func (r *run) brokerMeter(messages int64) func() float64 {
	if r.cfg.BrokerCPU == nil {
		return func() float64 { return math.NaN() }
	}
	before, err := r.cfg.BrokerCPU()
	return func() float64 {
		after, err2 := r.cfg.BrokerCPU()
		if err != nil || err2 != nil || messages < 1 {
			return math.NaN()
		}
		return float64(after-before) / float64(time.Microsecond) / float64(messages)
	}
}

func brokerNote(usPerMsg float64) string {
	if math.IsNaN(usPerMsg) {
		return ""
	}
	return fmt.Sprintf(", broker %.1f µs CPU/msg", usPerMsg)
}

func (r *run) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
}

// rotate returns impls turned by i, so that no implementation always runs first
// (after a queue deletion) or last.
func rotate(impls []string, i int) []string {
	k := i % len(impls)
	return append(slices.Clone(impls[k:]), impls[:k]...)
}

// consumeRep measures every consume cell once, for repetition i.
func (r *run) consumeRep(ctx context.Context, i int) error {
	if !r.cfg.has(SectionConsume) {
		return nil
	}
	impls := []string{ImplRaw, ImplRuntime}
	if r.cfg.Peer != "" {
		impls = append(impls, ImplPeer)
	}
	for _, cell := range r.cfg.cells() {
		for _, impl := range rotate(impls, i) {
			res, err := r.consume(ctx, impl, cell, i)
			if err != nil {
				return err
			}
			r.rep.addConsume(cell, impl, i, res.Rate(), res.CPUPerMessage(), res.brokerCPU)
			r.progress("rep %d/%d consume %-7s prefetch %3d concurrency %3d: %s msgs/s, %.1f µs CPU/msg%s",
				i+1, r.cfg.Repeat, impl, cell.Prefetch, cell.Concurrency, formatRate(res.Rate()), res.CPUPerMessage(), brokerNote(res.brokerCPU))
		}
	}
	return nil
}

// publishRep measures the publishers PublishRounds times, for repetition i: a
// publish run is short and the broker's pace swings by ±10 % from run to run, so
// it takes more pairs than consuming does to resolve a few per cent.
func (r *run) publishRep(ctx context.Context, i int) error {
	if !r.cfg.has(SectionPublish) {
		return nil
	}
	for round := range r.cfg.PublishRounds {
		sample := i*r.cfg.PublishRounds + round
		for _, impl := range rotate([]string{PubRaw, PubRawBare, PubGenerator}, sample) {
			rate, brokerCPU, err := r.publish(ctx, impl)
			if err != nil {
				return err
			}
			r.rep.addPublish(impl, sample, rate, brokerCPU)
			r.progress("rep %d/%d publish %-9s round %d/%d: %s msgs/s%s", i+1, r.cfg.Repeat, impl, round+1, r.cfg.PublishRounds,
				formatRate(rate), brokerNote(brokerCPU))
		}
	}
	return nil
}

// spikeRep measures the spike's peak RSS once per prefetch, for repetition i.
func (r *run) spikeRep(ctx context.Context, i int) error {
	if !r.cfg.has(SectionSpike) {
		return nil
	}
	for _, prefetch := range []int{0, 10} {
		for _, impl := range rotate([]string{ImplRaw, ImplRuntime}, i) {
			m, err := r.spike(ctx, impl, prefetch)
			if err != nil {
				return err
			}
			r.rep.addSpike(impl, prefetch, i, m)
			r.progress("rep %d/%d spike %-7s prefetch %2d: peak rss %s (VmHWM %s)",
				i+1, r.cfg.Repeat, impl, prefetch, formatBytes(float64(m.sampled)), formatBytes(float64(m.hwm)))
		}
	}
	return nil
}
