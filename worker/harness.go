package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/benchmq/bench/internal/procstat"
	"github.com/benchmq/bench/internal/telemetry"
)

// Under bench (`bench run` with workers.command), a service built on this
// runtime reports to the runner by itself, with no code change: when
// $BENCH_TELEMETRY is set, New applies the scenario's settings
// ($BENCH_WORKER_SETTINGS) over the service's Config and handler options,
// and says so in its log; Run introduces the process with the settings in
// force, reports when it is ready, every job's final outcome before the job
// is acked, every redelivery, and periodic stats. Jobs bench did not
// publish (without its sequence header) are not reported.

// harnessStatsEvery is how often the process reports its stats.
const harnessStatsEvery = 200 * time.Millisecond

// harness is the runtime's side of bench's telemetry; nil when not under bench.
type harness struct {
	addr  string
	index int
	over  telemetry.Overrides
	given []string // the keys over sets, in the scenario's names

	tel  *telemetry.Client
	stop chan struct{}
	wg   sync.WaitGroup
}

// harnessFromEnv returns the harness when the process runs under bench.
func harnessFromEnv() (*harness, error) {
	addr := os.Getenv(telemetry.EnvTelemetry)
	if addr == "" {
		return nil, nil
	}
	h := &harness{addr: addr}
	if s := os.Getenv(telemetry.EnvWorkerIndex); s != "" {
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 {
			return nil, fmt.Errorf("$%s %q: want a worker index, 0 or more", telemetry.EnvWorkerIndex, s)
		}
		h.index = i
	}
	if s := os.Getenv(telemetry.EnvSettings); s != "" {
		if err := json.Unmarshal([]byte(s), &h.over); err != nil {
			return nil, fmt.Errorf("$%s: %w", telemetry.EnvSettings, err)
		}
	}
	return h, nil
}

// applyConfig sets the scenario's settings on c, before its defaults and
// checks (which judge them as the service's own), and logs what changed.
func (h *harness) applyConfig(c *Config, log *slog.Logger) error {
	o := h.over
	var changes []any
	set := func(name string, dst, val any, changed bool) {
		h.given = append(h.given, name)
		if changed {
			changes = append(changes, name, fmt.Sprintf("%v (the service's: %v)", val, dst))
		} else {
			changes = append(changes, name, fmt.Sprintf("%v (as the service's)", val))
		}
	}
	if o.Prefetch != nil {
		set("prefetch", c.Prefetch, *o.Prefetch, c.Prefetch != *o.Prefetch)
		c.Prefetch = *o.Prefetch
	}
	if o.Concurrency != nil {
		set("concurrency", c.Concurrency, *o.Concurrency, c.Concurrency != *o.Concurrency)
		c.Concurrency = *o.Concurrency
	}
	if o.Timeout != nil {
		set("timeout", c.Timeout, *o.Timeout, c.Timeout != *o.Timeout)
		c.Timeout = *o.Timeout
	}
	if o.RateLimit != nil {
		set("rate_limit", c.RateLimit, *o.RateLimit, c.RateLimit != *o.RateLimit)
		c.RateLimit = *o.RateLimit
	}
	if o.Burst != nil {
		set("burst", c.Burst, *o.Burst, c.Burst != *o.Burst)
		c.Burst = *o.Burst
	}
	for _, part := range []struct {
		name string
		raw  json.RawMessage
		dst  any
	}{{"retry", o.Retry, &c.Retry}, {"breaker", o.Breaker, &c.Breaker}} {
		if len(part.raw) == 0 {
			continue
		}
		keys, err := rawKeys(part.raw)
		if err == nil {
			err = json.Unmarshal(part.raw, part.dst) // only the given keys change
		}
		if err != nil {
			return fmt.Errorf("$%s %s: %w", telemetry.EnvSettings, part.name, err)
		}
		for _, k := range keys {
			h.given = append(h.given, part.name+"."+k)
			changes = append(changes, part.name+"."+k, string(rawValue(part.raw, k)))
		}
	}
	if len(changes) > 0 {
		log.Info("running under bench: the scenario's settings override this service's Config and handler options", changes...)
	} else {
		log.Info("running under bench: the service's own settings are in force")
	}
	return nil
}

// applyOptions drops a handler's own value of every setting the scenario
// gives, so the scenario's (on Config) applies to the handler too; a
// handler's own retry policy takes the scenario's retry keys over it.
func (h *harness) applyOptions(o *handlerOptions) error {
	if h == nil {
		return nil
	}
	for _, k := range h.given {
		switch k {
		case "concurrency":
			o.concurrency = nil
		case "timeout":
			o.timeout = nil
		case "rate_limit", "burst":
			o.rate = nil
		}
	}
	if o.retry != nil && len(h.over.Retry) > 0 {
		p := *o.retry
		if err := json.Unmarshal(h.over.Retry, &p); err != nil {
			return fmt.Errorf("$%s retry: %w", telemetry.EnvSettings, err)
		}
		o.retry = &p
	}
	return nil
}

func rawKeys(raw json.RawMessage) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

func rawValue(raw json.RawMessage, key string) json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m) // rawKeys parsed it
	return m[key]
}

// start connects to the runner, introduces the process with its settings,
// and reports readiness and stats until close.
func (h *harness) start(ctx context.Context, w *Worker) error {
	host, _ := os.Hostname()
	settings, err := json.Marshal(w.settingsInForce(h.given))
	if err != nil {
		return fmt.Errorf("report to bench: encode settings: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tel, err := telemetry.Dial(dctx, h.addr, telemetry.Hello{Worker: h.index, PID: os.Getpid(), Host: host, Settings: settings})
	if err != nil {
		return fmt.Errorf("report to bench at $%s: %w", telemetry.EnvTelemetry, err)
	}
	h.tel, h.stop = tel, make(chan struct{})
	h.wg.Go(func() { h.report(w) })
	return nil
}

// report sends Ready once the worker is, and stats every harnessStatsEvery.
func (h *harness) report(w *Worker) {
	tick := time.NewTicker(harnessStatsEvery)
	defer tick.Stop()
	ready := w.Ready()
	for {
		select {
		case <-h.stop:
			return
		case <-ready:
			ready = nil
			if err := h.tel.Ready(); err != nil {
				w.log.Error("report ready to bench", "err", err)
			}
		case <-tick.C:
			if err := h.tel.Stats(harnessStats(h.index, w.Stats())); err != nil {
				w.log.Error("report stats to bench", "err", err)
			}
		}
	}
}

// close sends the last stats and says goodbye; Run calls it once every job
// in hand is finished.
func (h *harness) close(w *Worker) {
	close(h.stop)
	h.wg.Wait()
	err := errors.Join(h.tel.Stats(harnessStats(h.index, w.Stats())), h.tel.Close())
	if err != nil {
		w.log.Warn("close the report to bench", "err", err)
	}
}

// delivered reports a redelivery of one of bench's jobs.
func (h *harness) delivered(job *Job) {
	if h == nil || !job.Redelivered {
		return
	}
	if seq, ok := job.HeaderInt(telemetry.HeaderSeq); ok {
		if err := h.tel.Redelivered(seq); err != nil {
			job.w.log.Error("report a redelivery to bench", "err", err)
		}
	}
}

// final reports one of bench's jobs' final outcome; it returns once the
// record is on the socket, so a job acked after it is never counted lost.
// start is when its last attempt started.
func (h *harness) final(job *Job, kind telemetry.Kind, start time.Time) error {
	if h == nil {
		return nil
	}
	seq, ok := job.HeaderInt(telemetry.HeaderSeq)
	if !ok {
		return nil
	}
	intended, _ := job.HeaderInt(telemetry.HeaderIntended)
	now := time.Now()
	err := h.tel.Outcome(telemetry.Outcome{Seq: seq, Kind: kind, Attempt: job.Attempt, Intended: intended,
		Done: now.UnixNano(), Processing: now.Sub(start)})
	if err != nil {
		return fmt.Errorf("report the outcome to bench: %w", err)
	}
	return nil
}

// succeeded reports one of bench's jobs' success and then acks it: ack runs
// once the record is on the socket, so an acked job is never counted lost.
// The record shares a write with the others finished meanwhile and the
// caller does not wait for it: one syscall for many jobs instead of one per
// job. ack runs with the write's error (then the job must not be acked);
// jobs bench did not publish, and workers not under bench, ack at once. The
// pool's wait group covers the pending ack, so the shutdown waits for it.
func (h *harness) succeeded(w *Worker, job *Job, start time.Time, ack func(error)) {
	if h == nil {
		ack(nil)
		return
	}
	seq, ok := job.HeaderInt(telemetry.HeaderSeq)
	if !ok {
		ack(nil)
		return
	}
	intended, _ := job.HeaderInt(telemetry.HeaderIntended)
	now := time.Now()
	w.poolWG.Add(1) // the caller is in the pool: the count is above zero
	h.tel.OutcomeThen(telemetry.Outcome{Seq: seq, Kind: telemetry.Succeeded, Attempt: job.Attempt, Intended: intended,
		Done: now.UnixNano(), Processing: now.Sub(start)}, func(err error) {
		defer w.poolWG.Done()
		if err != nil {
			err = fmt.Errorf("report the outcome to bench: %w", err)
		}
		ack(err)
	})
}

// settings is what a process reports as in force: the worker's settings and
// each handler's, durations as text.
type settings struct {
	Prefetch     int               `json:"prefetch"`
	Concurrency  int               `json:"concurrency"`
	Timeout      string            `json:"timeout"`
	RateLimit    float64           `json:"rate_limit"`
	Burst        int               `json:"burst"`
	Retry        retrySettings     `json:"retry"`
	Breaker      breakerSettings   `json:"breaker"`
	FromScenario []string          `json:"from_scenario,omitempty"` // the keys the scenario set
	Handlers     []handlerSettings `json:"handlers"`
	QueueType    string            `json:"queue_type"`
}

type retrySettings struct {
	MaxAttempts int    `json:"max_attempts"`
	MinDelay    string `json:"min_delay"`
	MaxDelay    string `json:"max_delay"`
	Jitter      bool   `json:"jitter"`
	Mode        string `json:"mode"`
}

type breakerSettings struct {
	Enabled      bool    `json:"enabled"`
	FailureRatio float64 `json:"failure_ratio"`
	MinRequests  int     `json:"min_requests"`
	OpenFor      string  `json:"open_for"`
	Window       string  `json:"window"`
}

type handlerSettings struct {
	Name        string        `json:"name"`
	Queue       string        `json:"queue"`
	Concurrency int           `json:"concurrency"`
	Timeout     string        `json:"timeout"`
	RateLimit   float64       `json:"rate_limit"` // this handler's own bucket, or the worker's
	Retry       retrySettings `json:"retry"`
}

func retryOf(p RetryPolicy) retrySettings {
	return retrySettings{MaxAttempts: p.MaxAttempts, MinDelay: p.MinDelay.String(), MaxDelay: p.MaxDelay.String(), Jitter: p.Jitter, Mode: string(p.Mode)}
}

// settingsInForce describes the settings of a worker whose handlers are
// registered.
func (w *Worker) settingsInForce(given []string) settings {
	c := w.cfg
	s := settings{
		Prefetch: c.Prefetch, Concurrency: c.Concurrency, Timeout: c.Timeout.String(), RateLimit: c.RateLimit, Burst: c.Burst,
		Retry: retryOf(c.Retry),
		Breaker: breakerSettings{Enabled: c.Breaker.Enabled, FailureRatio: c.Breaker.FailureRatio, MinRequests: c.Breaker.MinRequests,
			OpenFor: c.Breaker.OpenFor.String(), Window: c.Breaker.Window.String()},
		FromScenario: given, QueueType: c.QueueType, Handlers: []handlerSettings{},
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.handlers {
		hs := handlerSettings{Name: h.name, Queue: h.queue, Concurrency: h.concurrency, Timeout: h.timeout.String(), Retry: retryOf(h.retry)}
		if h.limiter != nil {
			hs.RateLimit = float64(h.limiter.Limit())
		}
		s.Handlers = append(s.Handlers, hs)
	}
	return s
}

// harnessStats is a stats report of this process.
func harnessStats(index int, s Stats) telemetry.Stats {
	rss, _ := procstat.RSS(0)
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(heap)
	var heapBytes int64
	if heap[0].Value.Kind() == metrics.KindUint64 {
		heapBytes = int64(heap[0].Value.Uint64())
	}
	return telemetry.Stats{
		Worker: index, RSSBytes: rss, HeapBytes: heapBytes, Goroutines: runtime.NumGoroutine(),
		InFlight: s.InFlight, Started: int64(s.Started), Acked: int64(s.Acked), Failed: int64(s.Failed),
		Retried: int64(s.Retried), Recovered: int64(s.Recovered), DeadLettered: int64(s.DeadLettered),
		Reconnects: int64(s.Reconnects), BreakerState: s.BreakerState, BreakerOpened: int64(s.BreakerOpened),
		BreakerOpenSec: s.BreakerOpenTime.Seconds(), ConsumerActive: s.ConsumerActive, Blocked: s.Blocked,
	}
}
