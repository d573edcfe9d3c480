package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/report"
)

// Pipelines compared.
const (
	// PipeBench is `bench run` on a built-in no-op spike: generator, broker,
	// one worker process, telemetry, ledger, everything a scenario run does.
	PipeBench = "bench"
	// PipeRaw is the same broker work done by amqp091-go alone in one process:
	// one connection publishing with pipelined confirms while another consumes
	// and acks each delivery.
	PipeRaw = "raw"
)

// pipelineFigure is one pipeline run: completions per second, the client side's
// CPU µs per job, the broker's.
type pipelineFigure struct{ rate, clientCPU, brokerCPU float64 }

// pipelineScenario is the built-in no-op spike `bench run` runs.
func (c *Config) pipelineScenario() string {
	return fmt.Sprintf(`name: perf-pipeline
description: bench perf's whole-pipeline spike (no-op jobs)
app: perf
task: perf.pipeline.noop
queue: {type: classic}
workers: {processes: 1, concurrency: %d, prefetch: %d}
job: {work: 0s}
load:
  - spike: {jobs: %d, size: %d}
drain_timeout: %s
`, c.PipelineConcurrency, c.PipelinePrefetch, c.PipelineJobs, c.Size, c.ChildTimeout)
}

// pipelineBench runs `bench run` on the built-in spike and reads its
// result.json: the completion rate, and the runner's and the worker's CPU from
// the load start to the end of the drain.
func (r *run) pipelineBench(ctx context.Context, rep int) (pipelineFigure, error) {
	dir, err := os.MkdirTemp("", "bench-perf-pipeline-")
	if err != nil {
		return pipelineFigure{}, fmt.Errorf("create pipeline dir: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(file, []byte(r.cfg.pipelineScenario()), 0o644); err != nil {
		return pipelineFigure{}, fmt.Errorf("write pipeline scenario: %w", err)
	}
	out := filepath.Join(dir, "out")
	cmd := r.cfg.Bench([]string{"run", file, "--out", out, "--namespace", "auto"})
	// The URL goes through the environment, never the command line.
	cmd.Env = append(cmd.Environ(), "AMQP_URL="+r.cfg.URL)
	if r.cfg.ProfileDir != "" {
		cmd.Env = append(cmd.Environ(), EnvProfileDir+"="+filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("pipeline-rep%d", rep+1)))
	}
	tail := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = tail, tail
	meter := r.brokerMeter(r.cfg.PipelineJobs)
	cctx, cancel := context.WithTimeout(ctx, 2*r.cfg.ChildTimeout)
	defer cancel()
	if err := runCmd(cctx, cmd); err != nil {
		return pipelineFigure{}, fmt.Errorf("bench run: %w: %s", err, strings.TrimSpace(tail.String()))
	}
	brokerCPU := meter()
	b, err := os.ReadFile(filepath.Join(out, "result.json"))
	if err != nil {
		return pipelineFigure{}, fmt.Errorf("read bench run's result: %w", err)
	}
	var res report.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return pipelineFigure{}, fmt.Errorf("read bench run's result: %w", err)
	}
	if len(res.Variants) != 1 {
		return pipelineFigure{}, fmt.Errorf("bench run's result has %d variants, want 1", len(res.Variants))
	}
	v := res.Variants[0]
	if v.Ledger.Succeeded != r.cfg.PipelineJobs || v.Ledger.Lost != 0 || v.Ledger.Duplicates != 0 {
		return pipelineFigure{}, fmt.Errorf("bench run: %d succeeded, %d lost, %d duplicates of %d jobs",
			v.Ledger.Succeeded, v.Ledger.Lost, v.Ledger.Duplicates, r.cfg.PipelineJobs)
	}
	jobs := float64(r.cfg.PipelineJobs)
	return pipelineFigure{
		rate:      v.Throughput.CompletePerS,
		clientCPU: (v.RunnerCPUSeconds + v.WorkerCPUSeconds) * 1e6 / jobs,
		brokerCPU: brokerCPU,
	}, nil
}

// runCmd runs cmd, killing it when ctx ends.
func runCmd(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// pipelineRaw runs the raw pair in a child process.
func (r *run) pipelineRaw(ctx context.Context) (pipelineFigure, error) {
	q := queueName()
	defer r.cleanup(q)
	if err := r.admin.declare(q); err != nil {
		return pipelineFigure{}, err
	}
	a := childArgs{impl: ImplPair, queue: q, prefetch: r.cfg.PipelinePrefetch, concurrency: r.cfg.PipelineConcurrency,
		count: r.cfg.PipelineJobs, size: r.cfg.Size, timeout: r.cfg.ChildTimeout}
	meter := r.brokerMeter(r.cfg.PipelineJobs)
	res, _, err := r.child(ctx, a, false)
	if err != nil {
		return pipelineFigure{}, fmt.Errorf("raw pipeline: %w", err)
	}
	brokerCPU := meter()
	if err := r.drained(q); err != nil {
		return pipelineFigure{}, fmt.Errorf("raw pipeline: %w", err)
	}
	return pipelineFigure{rate: res.Rate(), clientCPU: res.CPUPerMessage(), brokerCPU: brokerCPU}, nil
}

// pipelineRep measures both pipelines once, for repetition i.
func (r *run) pipelineRep(ctx context.Context, i int) error {
	if !r.cfg.has(SectionPipeline) {
		return nil
	}
	for _, impl := range rotate([]string{PipeRaw, PipeBench}, i) {
		var f pipelineFigure
		var err error
		if impl == PipeBench {
			f, err = r.pipelineBench(ctx, i)
		} else {
			f, err = r.pipelineRaw(ctx)
		}
		if err != nil {
			return err
		}
		r.rep.addPipeline(impl, i, f)
		r.progress("rep %d/%d pipeline %-5s: %s jobs/s, client %.1f µs CPU/job%s", i+1, r.cfg.Repeat, impl,
			formatRate(f.rate), f.clientCPU, brokerNote(f.brokerCPU))
	}
	return nil
}

// publishAndConsume is the raw pair: a consumer connection (prefetch, each
// delivery acked by one of concurrency goroutines) and a publisher connection
// (pipelined confirms, defaultWindow unconfirmed) on queue at once. The tally
// runs from the first publish to the last ack.
func publishAndConsume(ctx context.Context, url string, a childArgs, t *tally) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	go func() { consumed <- consumeRaw(ctx, url, a, t) }()
	// The messages the load generator sends: its headers, values changing per message.
	next := generatorLikeMessage(a.size)
	_, pubErr := publishRaw(ctx, url, a.queue, a.count, defaultWindow, func(i int64) amqp.Publishing {
		if i == 0 {
			t.start()
		}
		return next(i)
	})
	if pubErr != nil {
		cancel()
		<-consumed
		return fmt.Errorf("publish: %w", pubErr)
	}
	return <-consumed
}
