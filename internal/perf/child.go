package perf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/pflag"

	"github.com/benchmq/bench/internal/procstat"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/worker"
)

// EnvURL is the environment variable through which a child gets the broker URL:
// not the command line, where every user of the machine could read the password.
const EnvURL = "BENCH_PERF_URL"

// EnvProfileDir, when set for a bench process, makes it write a CPU profile of
// its life to that directory (cmd/bench): how `bench perf --profile` profiles
// the pipeline's runner and worker processes.
const EnvProfileDir = "BENCH_PROFILE_DIR"

// Consumer implementations a child runs.
const (
	ImplRaw     = "raw"     // a bare amqp091-go loop: Concurrency goroutines ranging over one delivery channel
	ImplRuntime = "runtime" // the worker runtime with a no-op (or sleeping) handler
	ImplPeer    = "peer"    // watermill-amqp, in its own binary (the peer module)
	ImplPair    = "pair"    // the raw pipeline: a raw publisher and a raw consumer on one queue at once
)

// ChildResult is the one JSON line a consumer process prints on stdout when it has
// consumed and acked Count messages. The peer binary prints the same fields.
type ChildResult struct {
	Impl  string `json:"impl"`
	Count int64  `json:"count"`
	// FirstNS and LastNS are when the first message reached the handler and when the
	// last one was acked (Unix ns): connecting and declaring are left out, so the
	// window measures consuming only.
	FirstNS int64 `json:"first_ns"`
	LastNS  int64 `json:"last_ns"`
	// HWMBytes is the process's peak resident set (VmHWM) at the end; IdleBytes
	// its resident set (VmRSS) before it connected: the binary's own footprint.
	HWMBytes  int64 `json:"hwm_bytes"`
	IdleBytes int64 `json:"idle_bytes,omitempty"`
	// CPUNS is the process's user+system CPU time over the same window: unlike
	// msgs/s it hardly depends on what else the machine runs.
	CPUNS int64 `json:"cpu_ns"`

	brokerCPU float64 // the broker's CPU µs per message while the child ran; NaN if unknown
}

// CPUPerMessage returns the CPU time the process spent per message, in µs.
func (r ChildResult) CPUPerMessage() float64 {
	if r.Count < 2 {
		return 0
	}
	return float64(r.CPUNS) / 1e3 / float64(r.Count-1)
}

// Rate returns messages per second over the measured window (Count-1 intervals).
func (r ChildResult) Rate() float64 {
	d := time.Duration(r.LastNS - r.FirstNS)
	if r.Count < 2 || d <= 0 {
		return 0
	}
	return float64(r.Count-1) / d.Seconds()
}

// childArgs are the flags of a consumer process.
type childArgs struct {
	impl        string
	queue       string
	prefetch    int
	concurrency int
	count       int64
	size        int // message body, for ImplPair
	work        time.Duration
	timeout     time.Duration
	cpuProfile  string
	memProfile  string
}

func (a childArgs) flags() []string {
	out := []string{
		"--impl", a.impl, "--queue", a.queue,
		"--prefetch", strconv.Itoa(a.prefetch), "--concurrency", strconv.Itoa(a.concurrency),
		"--count", strconv.FormatInt(a.count, 10), "--size", strconv.Itoa(a.size), "--work", a.work.String(), "--timeout", a.timeout.String(),
	}
	if a.cpuProfile != "" {
		out = append(out, "--cpuprofile", a.cpuProfile)
	}
	if a.memProfile != "" {
		out = append(out, "--memprofile", a.memProfile)
	}
	return out
}

func (a childArgs) validate() error {
	var errs []error
	if a.impl != ImplRaw && a.impl != ImplRuntime && a.impl != ImplPair {
		errs = append(errs, fmt.Errorf("impl %q: want %q, %q or %q", a.impl, ImplRaw, ImplRuntime, ImplPair))
	}
	if a.size < 0 {
		errs = append(errs, fmt.Errorf("size %d: must not be negative", a.size))
	}
	if a.queue == "" {
		errs = append(errs, errors.New("queue: required"))
	}
	if a.prefetch < 0 {
		errs = append(errs, fmt.Errorf("prefetch %d: must not be negative", a.prefetch))
	}
	if a.concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be at least 1", a.concurrency))
	}
	if a.count < 1 {
		errs = append(errs, fmt.Errorf("count %d: must be at least 1", a.count))
	}
	if a.work < 0 {
		errs = append(errs, fmt.Errorf("work %v: must not be negative", a.work))
	}
	if a.timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must be positive", a.timeout))
	}
	return errors.Join(errs...)
}

// ChildMain is a consumer process (`bench perf --child ...`): it consumes --count
// messages from --queue with --impl, acking each, and prints a ChildResult line
// on stdout. The broker URL comes from $BENCH_PERF_URL. It returns the exit code:
// 0, 2 for bad flags, 3 when consuming failed.
func ChildMain(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("bench perf --child", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var a childArgs
	fs.StringVar(&a.impl, "impl", "", "raw | runtime | pair")
	fs.StringVar(&a.queue, "queue", "", "queue to consume (a valid task name for the runtime)")
	fs.IntVar(&a.prefetch, "prefetch", 0, "basic.qos prefetch count (0 = unlimited)")
	fs.IntVar(&a.concurrency, "concurrency", 1, "handler goroutines")
	fs.Int64Var(&a.count, "count", 0, "messages to consume")
	fs.IntVar(&a.size, "size", 0, "body size of the messages the pair publishes")
	fs.DurationVar(&a.work, "work", 0, "simulated work per message (a sleep)")
	fs.DurationVar(&a.timeout, "timeout", 5*time.Minute, "give up after this long")
	fs.StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile here")
	fs.StringVar(&a.memProfile, "memprofile", "", "write an allocation profile here")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := a.validate(); err != nil {
		fmt.Fprintf(stderr, "bench perf --child: %v\n", err)
		return 2
	}
	url := os.Getenv(EnvURL)
	if url == "" {
		fmt.Fprintf(stderr, "bench perf --child: $%s is not set\n", EnvURL)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	res, err := runChild(ctx, url, a)
	if err != nil {
		fmt.Fprintf(stderr, "bench perf --child: %s\n", strings.ReplaceAll(err.Error(), url, redact.URL(url)))
		return 3
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(stderr, "bench perf --child: write result: %v\n", err)
		return 3
	}
	return 0
}

func runChild(ctx context.Context, url string, a childArgs) (res ChildResult, err error) {
	idle, err := procstat.RSS(0)
	if err != nil {
		return res, err
	}
	if a.cpuProfile != "" {
		f, err := os.Create(a.cpuProfile)
		if err != nil {
			return res, fmt.Errorf("create cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	t := newTally(a.count)
	switch a.impl {
	case ImplRaw:
		err = consumeRaw(ctx, url, a, t)
	case ImplRuntime:
		err = consumeRuntime(ctx, url, a, t)
	case ImplPair:
		err = publishAndConsume(ctx, url, a, t)
	}
	if err != nil {
		return res, err
	}
	if a.memProfile != "" {
		if err := writeAllocProfile(a.memProfile); err != nil {
			return res, err
		}
	}
	hwm, err := procstat.Status(0, "VmHWM")
	if err != nil {
		return res, err
	}
	return ChildResult{Impl: a.impl, Count: a.count, FirstNS: t.first.Load(), LastNS: t.last.Load(),
		HWMBytes: hwm, IdleBytes: idle, CPUNS: t.lastCPU.Load() - t.firstCPU.Load()}, nil
}

func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create alloc profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write alloc profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write alloc profile: %w", err)
	}
	return nil
}

// tally counts handled messages and reads the clock and the process's CPU time
// at the first and the last: twice per run, not per message.
type tally struct {
	want              int64
	n                 atomic.Int64
	first, last       atomic.Int64
	firstCPU, lastCPU atomic.Int64
	done              chan struct{}
}

func newTally(want int64) *tally { return &tally{want: want, done: make(chan struct{})} }

// start begins the window before the first message is handled (the raw
// pipeline's first publish); without it the first add begins it.
func (t *tally) start() {
	if t.firstCPU.CompareAndSwap(0, cpuTime()) {
		t.first.Store(time.Now().UnixNano())
	}
}

func (t *tally) add() {
	k := t.n.Add(1)
	if k == 1 {
		t.start()
	}
	if k == t.want {
		t.lastCPU.Store(cpuTime())
		t.last.Store(time.Now().UnixNano())
		close(t.done)
	}
}

// cpuTime returns this process's user+system CPU time in ns (0 if unknown).
func cpuTime() int64 { return int64(procstat.SelfCPU()) }

func (t *tally) wait(ctx context.Context) error {
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("consume %d messages (got %d): %w", t.want, t.n.Load(), ctx.Err())
	}
}

// consumeRaw is the baseline: what a service would write with amqp091-go alone.
func consumeRaw(ctx context.Context, url string, a childArgs, t *tally) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return fmt.Errorf("dial broker: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Qos(a.prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch %d: %w", a.prefetch, err)
	}
	deliveries, err := ch.Consume(a.queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume queue %q: %w", a.queue, err)
	}
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	var wg sync.WaitGroup
	for range a.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range deliveries {
				if a.work > 0 {
					time.Sleep(a.work)
				}
				if err := d.Ack(false); err != nil {
					fail(fmt.Errorf("ack: %w", err))
					continue
				}
				t.add()
			}
		}()
	}
	waitErr := t.wait(ctx)
	// Closing the connection ends the delivery channel and so the goroutines.
	closeErr := conn.Close()
	wg.Wait()
	if cause := context.Cause(ctx); waitErr != nil && cause != nil {
		return fmt.Errorf("consume queue %q: %w", a.queue, cause)
	}
	if waitErr != nil {
		return waitErr
	}
	if closeErr != nil {
		return fmt.Errorf("close connection: %w", closeErr)
	}
	return nil
}

// consumeRuntime runs the worker runtime on a.queue, which must be a task name.
func consumeRuntime(ctx context.Context, url string, a childArgs, t *tally) error {
	app, _, _ := strings.Cut(a.queue, ".")
	w, err := worker.New(worker.Config{
		URL:         url,
		App:         app,
		Prefetch:    a.prefetch,
		Concurrency: a.concurrency,
		// One attempt: no retry-tier queues to declare; the handler never fails.
		Retry:  worker.RetryPolicy{MaxAttempts: 1},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return fmt.Errorf("create worker: %w", err)
	}
	work := a.work
	if err := w.HandleTask(a.queue, func(context.Context, *worker.Job) error {
		if work > 0 {
			time.Sleep(work)
		}
		t.add()
		return nil
	}); err != nil {
		return fmt.Errorf("register handler: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- w.Run(runCtx) }()

	waitErr := t.wait(ctx)
	if waitErr == nil {
		// The tally counts handler returns; the ack follows each. Wait for the last
		// one so that stopping requeues nothing.
		waitErr = waitAcked(ctx, w, uint64(t.want))
	}
	stop()
	if err := <-ran; err != nil {
		return fmt.Errorf("run worker: %w", err)
	}
	return waitErr
}

func waitAcked(ctx context.Context, w *worker.Worker, want uint64) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for w.Stats().Acked < want {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d acks (got %d): %w", want, w.Stats().Acked, ctx.Err())
		}
	}
	return nil
}
