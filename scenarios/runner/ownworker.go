package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/scenarios"
)

// The workers stage of a scenario with workers.command: the user's own
// worker. Built on the runtime it reports over telemetry like `bench worker`
// (white-box); otherwise bench watches its completion events (black-box,
// blackbox.go).

// Worker modes, as result.json names them.
const (
	modeSimulated = "simulated"
	modeWhiteBox  = "white-box"
	modeBlackBox  = "black-box"
)

func modeOf(sc *scenarios.Scenario) string {
	switch {
	case !sc.OwnWorker():
		return modeSimulated
	case sc.BlackBox():
		return modeBlackBox
	}
	return modeWhiteBox
}

// How long an own worker may take to be ready, and how long after it looks
// ready (consumers on the queue, its ready line) it may take to say hello
// over telemetry before bench concludes it never will.
const (
	readyTimeout   = 90 * time.Second
	telemetryGrace = 5 * time.Second
)

// ErrNoTelemetry is the environment error of a command that sends no
// telemetry while the scenario has no completion block: bench could not see
// any of its jobs finish.
var ErrNoTelemetry = errors.New("workers.command sent no telemetry, and the scenario has no completion block: bench cannot see its jobs finish. " +
	"Either build the worker on github.com/benchmq/bench/worker, which reports to $BENCH_TELEMETRY by itself (no code change), " +
	"or add a completion block naming the event it publishes when a job is done and where that event carries the job's TID " +
	"(completion: {event: ..., tid: {json: tid}}; docs/scenarios.md, \"Your own worker\")")

// CheckOptions refuses the run options a scenario cannot honour:
// --namespace and --reset-queues with workers.command, whose queues are the
// worker's own. New checks it too; a CLI calls it to report bad input.
func CheckOptions(sc *scenarios.Scenario, opts Options) error {
	own := sc.OwnWorker()
	if vs, err := sc.Variants(); err == nil {
		for _, v := range vs {
			own = own || v.Scenario.OwnWorker()
		}
	}
	if !own {
		return nil
	}
	var errs []error
	if opts.Namespace != "" {
		errs = append(errs, errors.New("--namespace renames the scenario's queues and exchanges, but workers.command declares its own under its own names: "+
			"run it on a broker of its own (broker: {managed: true}, or a vhost of its own in the URL) instead"))
	}
	if opts.ResetQueues {
		errs = append(errs, errors.New("--reset-queues deletes queues, and the queues of workers.command are the worker's own: bench never deletes them. "+
			"Empty them yourself (rabbitmqctl purge_queue NAME), or run on a broker of its own (broker: {managed: true})"))
	}
	return errors.Join(errs...)
}

// ownSpec is how to start the processes of workers.command: the program
// (a relative path is the scenario directory's, which is also the working
// directory), and the environment of DESIGN's contract.
func (v *variantRun) ownSpec() (procSpec, error) {
	sc := v.sc
	dir, err := filepath.Abs(sc.Dir())
	if err != nil {
		return procSpec{}, fmt.Errorf("find the scenario's directory: %w", err)
	}
	argv := slices.Clone(sc.Workers.Command)
	if strings.Contains(argv[0], "/") && !filepath.IsAbs(argv[0]) {
		argv[0] = filepath.Join(dir, argv[0])
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return procSpec{}, v.envErr("workers.command: %v (a relative path is the scenario directory's, %s; is the worker built?)", err, dir)
	}
	settings, err := overrides(sc.Workers)
	if err != nil {
		return procSpec{}, err
	}
	spec := procSpec{argv: argv, dir: dir, name: strings.Join(sc.Workers.Command, " ")}
	if sc.Workers.Ready.Log != "" {
		spec.ready = regexp.MustCompile(sc.Workers.Ready.Log) // the parser compiled it
	}
	fixed := append(v.env.workerEnv(), telemetry.EnvTelemetry+"="+v.tel.Addr(), telemetry.EnvRunID+"="+v.runID)
	if settings != "" {
		fixed = append(fixed, telemetry.EnvSettings+"="+settings)
	}
	for _, k := range sortedKeys(sc.Workers.Env) {
		fixed = append(fixed, k+"="+sc.Workers.Env[k])
	}
	for _, d := range sc.Dependencies {
		fixed = append(fixed, d.Env+"="+v.env.deps[d.Name].Addr())
	}
	spec.env = func(id int) []string {
		return append(slices.Clone(fixed), telemetry.EnvWorkerIndex+"="+strconv.Itoa(id))
	}
	return spec, nil
}

// overrides encodes the runtime settings the scenario gives itself
// (Workers.Given) for $BENCH_WORKER_SETTINGS; "" when it gives none.
func overrides(w scenarios.Workers) (string, error) {
	var o telemetry.Overrides
	retry, breaker := map[string]any{}, map[string]any{}
	all := func(v any) (map[string]any, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(b, &m)
	}
	retryAll, err := all(w.Retry)
	if err != nil {
		return "", fmt.Errorf("encode workers.retry: %w", err)
	}
	breakerAll, err := all(w.Breaker)
	if err != nil {
		return "", fmt.Errorf("encode workers.breaker: %w", err)
	}
	for _, k := range w.Given {
		switch {
		case k == "prefetch":
			o.Prefetch = &w.Prefetch
		case k == "concurrency":
			o.Concurrency = &w.Concurrency
		case k == "timeout":
			o.Timeout = &w.Timeout
		case k == "rate_limit":
			o.RateLimit = &w.RateLimit
		case k == "burst":
			o.Burst = &w.Burst
		case strings.HasPrefix(k, "retry."):
			sub := strings.TrimPrefix(k, "retry.")
			retry[sub] = retryAll[sub]
		case strings.HasPrefix(k, "breaker."):
			sub := strings.TrimPrefix(k, "breaker.")
			breaker[sub] = breakerAll[sub]
		}
	}
	if len(retry) > 0 {
		o.Retry, _ = json.Marshal(retry)
	}
	if len(breaker) > 0 {
		o.Breaker, _ = json.Marshal(breaker)
	}
	if o.Empty() {
		return "", nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("encode the scenario's worker settings: %w", err)
	}
	return string(b), nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// startOwnWorkers spawns workers.command and waits until every process is
// ready: white-box, when each said so over telemetry (and, with
// workers.ready.log, printed its ready line too); black-box, when each
// printed its ready line or, without one, when the queue has a consumer per
// process.
func (v *variantRun) startOwnWorkers(ctx context.Context) error {
	spec, err := v.ownSpec()
	if err != nil {
		return err
	}
	v.procs = newProcs(spec, v.dir, v.r.seed+int64(v.index))
	n := v.sc.Workers.Processes
	v.log.Info("starting workers", "mode", modeOf(v.sc), "command", spec.name, "processes", n, "dir", spec.dir)
	if err := v.procs.startAll(n); err != nil {
		return fmt.Errorf("%w: %w", ErrEnvironment, err)
	}
	return v.waitOwnReady(ctx, n, readyTimeout)
}

// waitOwnReady polls (four times a second: consumers on a queue give no
// event) until the workers are ready, one dies, or the timeout.
func (v *variantRun) waitOwnReady(ctx context.Context, n int, timeout time.Duration) error {
	white := modeOf(v.sc) == modeWhiteBox
	byLog := v.procs.spec.ready != nil
	logged := map[int]bool{}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var looksReady time.Time // when the processes looked ready without telemetry
	for {
		consumers := -1
		if !byLog {
			if _, c, err := v.watch.depth(v.queue); err == nil {
				consumers = c
			}
		}
		outside := len(logged) >= n || (!byLog && consumers >= n)
		switch {
		case white && byLog && outside && v.coll.readyCount() >= n:
			return nil // printed their line, and said hello and ready
		case white && !byLog && v.coll.readyCount() >= n:
			return nil
		case !white && outside:
			return nil
		}
		if white && outside && v.coll.helloCount() == 0 {
			if looksReady.IsZero() {
				looksReady = time.Now()
			} else if time.Since(looksReady) > telemetryGrace {
				return fmt.Errorf("%w: %w (logs in %s)", ErrEnvironment, ErrNoTelemetry, v.dir)
			}
		}
		select {
		case id := <-v.procs.ready:
			logged[id] = true
		case <-v.coll.readyCh:
		case <-tick.C:
		case err := <-v.procs.died:
			return fmt.Errorf("%w: %w", ErrEnvironment, err)
		case <-deadline.C:
			if white && v.coll.helloCount() == 0 {
				return fmt.Errorf("%w: %w (nothing ready after %s; logs in %s)", ErrEnvironment, ErrNoTelemetry, timeout, v.dir)
			}
			what := fmt.Sprintf("%d of %d processes said ready over telemetry", v.coll.readyCount(), n)
			switch {
			case byLog:
				what = fmt.Sprintf("%d of %d processes printed a line matching workers.ready.log %q", len(logged), n, v.sc.Workers.Ready.Log)
			case !white:
				what = fmt.Sprintf("queue %s has %d consumers, want one per process (%d); set workers.ready.log if the worker consumes another queue", v.queue, max(consumers, 0), n)
			}
			return v.envErr("workers.command not ready after %s: %s (logs in %s)", timeout, what, v.dir)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// workerInfo is what result.json records of the worker processes: the mode,
// the command, and each process's settings as it reported them.
func (v *variantRun) workerInfo() *report.WorkerInfo {
	wi := &report.WorkerInfo{Mode: modeOf(v.sc), Command: v.sc.Workers.Command}
	if v.coll != nil {
		for _, h := range v.coll.hellos() {
			wi.Processes = append(wi.Processes, report.WorkerProcess{Index: h.Worker, PID: h.PID, Settings: h.Settings})
		}
	}
	return wi
}

// messageHook shapes each job for workers.command: its body (job.body), its
// TID where the worker reads it (job.tid), and, for a black box, its intended
// send time noted for the latency of its completion. nil for the simulated
// worker, which reads the harness headers alone.
func (v *variantRun) messageHook() (func(loadgen.JobInfo, *amqp.Publishing) error, error) {
	if !v.sc.OwnWorker() {
		return nil, nil
	}
	j := v.sc.Job
	var tmpl *loadgen.Template
	var lines [][]byte
	var err error
	switch {
	case j.Body.Template != "":
		if tmpl, err = loadgen.ParseTemplate(j.Body.Template, v.r.seed+int64(v.index)); err != nil {
			return nil, err
		}
	case j.Body.File != "":
		path := j.Body.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(v.sc.Dir(), path)
		}
		if lines, err = loadgen.ReadBodyFile(path, j.TID.JSON); err != nil {
			return nil, err
		}
	}
	return func(ji loadgen.JobInfo, msg *amqp.Publishing) error {
		if v.intended != nil {
			v.intended.set(ji.Seq, ji.Intended)
		}
		body := msg.Body
		switch {
		case tmpl != nil:
			if body, err = tmpl.Render(loadgen.BodyData{TID: ji.TID, Seq: ji.Seq}); err != nil {
				return err
			}
		case lines != nil:
			body = lines[ji.Seq%int64(len(lines))]
		}
		if j.TID.JSON != "" {
			if body, err = loadgen.SetJSONField(body, j.TID.JSON, ji.TID); err != nil {
				return fmt.Errorf("job.tid.json: %w", err)
			}
			msg.ContentType = "application/json"
		}
		if j.TID.Header != "" {
			msg.Headers[j.TID.Header] = ji.TID
		}
		msg.Body = body
		return nil
	}, nil
}
