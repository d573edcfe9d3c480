package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/ledger"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/procstat"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/worker"
)

// Publishers compared.
const (
	// PubRaw is a bare pipelined-confirm loop publishing the messages the load
	// generator publishes (the same five headers, values changing per message).
	PubRaw = "raw"
	// PubRawBare is the same loop with a body only: what amqp091-go does at best.
	PubRawBare = "raw-bare"
	// PubGenerator is the load generator (internal/loadgen) with one spike phase.
	PubGenerator = "loadgen"
)

// Cell is one consume configuration.
type Cell struct {
	Prefetch    int `json:"prefetch"`
	Concurrency int `json:"concurrency"`
}

// consume prefills a fresh queue and has impl consume it in a child process.
func (r *run) consume(ctx context.Context, impl string, cell Cell, rep int) (ChildResult, error) {
	q := queueName()
	defer r.cleanup(q)
	if err := r.admin.declare(q); err != nil {
		return ChildResult{}, err
	}
	if err := prefill(ctx, r.admin, r.cfg.URL, q, r.cfg.Messages, r.cfg.Size); err != nil {
		return ChildResult{}, err
	}
	a := childArgs{impl: impl, queue: q, prefetch: cell.Prefetch, concurrency: cell.Concurrency,
		count: r.cfg.Messages, timeout: r.cfg.ChildTimeout}
	// The broker's CPU over the child's whole life: connecting and declaring are
	// in it, but small next to delivering and acking every message.
	meter := r.brokerMeter(r.cfg.Messages)
	if r.cfg.ProfileDir != "" && impl != ImplPeer {
		base := filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("%s-p%d-c%d-rep%d", impl, cell.Prefetch, cell.Concurrency, rep+1))
		a.cpuProfile, a.memProfile = base+".cpu.pprof", base+".allocs.pprof"
	}
	res, _, err := r.child(ctx, a, false)
	if err != nil {
		return ChildResult{}, fmt.Errorf("consume with %s (prefetch %d, concurrency %d): %w", impl, cell.Prefetch, cell.Concurrency, err)
	}
	res.brokerCPU = meter()
	if err := r.drained(q); err != nil {
		return ChildResult{}, fmt.Errorf("consume with %s: %w", impl, err)
	}
	return res, nil
}

// drained checks that the consumer acked everything: an unacked message would
// have been requeued when it disconnected.
func (r *run) drained(q string) error {
	n, err := r.admin.ready(q)
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("queue %q: %d messages left after the consumer acked all", q, n)
	}
	return nil
}

// cleanup deletes q; a failure is reported but does not void the figure.
func (r *run) cleanup(q string) {
	if err := r.admin.remove(q); err != nil {
		r.progress("warning: %v", r.redact(err))
	}
}

// spikeFigure is one spike run: the child's peak RSS as sampled from /proc and as
// the kernel's high-water mark.
type spikeFigure struct{ sampled, hwm, idle int64 }

// spike has impl consume SpikeJobs waiting jobs with a sleeping handler, sampling
// its RSS.
func (r *run) spike(ctx context.Context, impl string, prefetch int) (spikeFigure, error) {
	q := queueName()
	defer r.cleanup(q)
	if err := r.admin.declare(q); err != nil {
		return spikeFigure{}, err
	}
	if err := prefill(ctx, r.admin, r.cfg.URL, q, r.cfg.SpikeJobs, r.cfg.SpikeSize); err != nil {
		return spikeFigure{}, err
	}
	a := childArgs{impl: impl, queue: q, prefetch: prefetch, concurrency: r.cfg.SpikeConcurrency,
		count: r.cfg.SpikeJobs, work: r.cfg.SpikeWork, timeout: r.cfg.ChildTimeout}
	res, peak, err := r.child(ctx, a, true)
	if err != nil {
		return spikeFigure{}, fmt.Errorf("spike with %s (prefetch %d): %w", impl, prefetch, err)
	}
	if err := r.drained(q); err != nil {
		return spikeFigure{}, fmt.Errorf("spike with %s: %w", impl, err)
	}
	return spikeFigure{sampled: max(peak, 0), hwm: res.HWMBytes, idle: res.IdleBytes}, nil
}

// rssInterval is how often a spike child's RSS is sampled, as the runner samples
// workers (it reads VmRSS too).
const rssInterval = 5 * time.Millisecond

// child runs one consumer process and returns its result line and, when sample is
// set, the highest VmRSS read while it ran.
func (r *run) child(ctx context.Context, a childArgs, sample bool) (ChildResult, int64, error) {
	var res ChildResult
	var cmd *exec.Cmd
	if a.impl == ImplPeer {
		args := []string{"--queue", a.queue, "--prefetch", strconv.Itoa(a.prefetch),
			"--concurrency", strconv.Itoa(a.concurrency), "--count", strconv.FormatInt(a.count, 10),
			"--timeout", a.timeout.String()}
		cmd = exec.Command(r.cfg.Peer, args...)
	} else {
		cmd = r.cfg.Child(a.flags())
	}
	cmd.Env = append(cmd.Environ(), EnvURL+"="+r.cfg.URL)
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		return res, 0, fmt.Errorf("start %s child: %w", a.impl, err)
	}
	exited := make(chan struct{})
	var peak atomic.Int64
	watcherDone := make(chan struct{})
	go func() {
		// Owns the sampling and kills the child if ctx ends first.
		defer close(watcherDone)
		var tick <-chan time.Time
		if sample {
			t := time.NewTicker(rssInterval)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-exited:
				return
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				return
			case <-tick:
				if v, err := procstat.RSS(cmd.Process.Pid); err == nil && v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	waitErr := cmd.Wait()
	close(exited)
	<-watcherDone
	if waitErr != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() != nil {
			return res, 0, fmt.Errorf("%s child: %w", a.impl, ctx.Err())
		}
		return res, 0, fmt.Errorf("%s child: %w: %s", a.impl, waitErr, msg)
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		return res, 0, fmt.Errorf("%s child: parse result %q: %w", a.impl, stdout.String(), err)
	}
	if res.Count != a.count {
		return res, 0, fmt.Errorf("%s child: consumed %d, want %d", a.impl, res.Count, a.count)
	}
	return res, peak.Load(), nil
}

// tailBuffer keeps the last max bytes written: a failing child's last words.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// publish measures one publisher into a fresh queue: msgs/s and the broker's CPU
// µs per message (NaN when unknown).
func (r *run) publish(ctx context.Context, impl string) (rate, brokerCPU float64, err error) {
	q := queueName()
	defer r.cleanup(q)
	if err := r.admin.declare(q); err != nil {
		return 0, 0, err
	}
	n, size := r.cfg.Messages, r.cfg.Size
	meter := r.brokerMeter(n)
	switch impl {
	case PubRaw, PubRawBare:
		next := bareMessage(size)
		if impl == PubRaw {
			next = generatorLikeMessage(size)
		}
		st, err := publishRaw(ctx, r.cfg.URL, q, n, defaultWindow, next)
		if err != nil {
			return 0, 0, fmt.Errorf("publish with %s: %w", impl, err)
		}
		rate = st.rate()
	case PubGenerator:
		if rate, err = publishGenerator(ctx, r.cfg.URL, q, n, size); err != nil {
			return 0, 0, fmt.Errorf("publish with %s: %w", impl, err)
		}
	}
	brokerCPU = meter()
	got, err := r.admin.ready(q)
	if err != nil {
		return 0, 0, err
	}
	if int64(got) != n {
		return 0, 0, fmt.Errorf("publish with %s: queue holds %d messages, want %d", impl, got, n)
	}
	return rate, brokerCPU, nil
}

func bareMessage(size int) func(int64) amqp.Publishing {
	msg := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: make([]byte, size)}
	return func(int64) amqp.Publishing { return msg }
}

// generatorLikeMessage mirrors the message the load generator sends: the
// runtime's TID, attempt and first-published headers plus the harness's sequence
// number and intended time, a message ID and a timestamp. The values change per
// message, as the generator's do; the TID stays fixed (the generator formats a
// fresh one, which is part of what is measured).
func generatorLikeMessage(size int) func(int64) amqp.Publishing {
	msg := amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		MessageId:    tid,
		Body:         make([]byte, size),
		Headers: amqp.Table{
			worker.HeaderTID: tid, worker.HeaderAttempt: int32(1), worker.HeaderFirstPublished: int64(0),
			loadgen.HeaderSeq: int64(0), loadgen.HeaderIntended: int64(0),
		},
	}
	return func(i int64) amqp.Publishing {
		now := time.Now()
		msg.Headers[worker.HeaderFirstPublished] = now.UnixMilli()
		msg.Headers[loadgen.HeaderSeq] = i
		msg.Headers[loadgen.HeaderIntended] = now.UnixNano()
		msg.Timestamp = now
		return msg
	}
}

// publishGenerator runs the load generator with one spike of n jobs and returns
// msgs/s from its first send to its last confirm, the window publishRaw measures.
func publishGenerator(ctx context.Context, url, queue string, n int64, size int) (float64, error) {
	var confirmed atomic.Int64
	var last atomic.Int64
	g, err := loadgen.New(loadgen.Config{
		URL:        url,
		RoutingKey: queue,
		RunID:      "perf",
		Phases:     []loadgen.Phase{{Kind: loadgen.KindSpike, Jobs: n, Size: size}},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		// The runner hooks both callbacks (into its ledger); an empty OnPublished
		// keeps the call on the measured path without measuring the ledger twice.
		OnPublished: func(int64) {},
		OnConfirmed: func(_ int64, ack bool, _ time.Duration) {
			if confirmed.Add(1) == n {
				last.Store(time.Now().UnixNano())
			}
		},
	})
	if err != nil {
		return 0, err
	}
	res, err := g.Run(ctx, time.Now())
	if err != nil {
		return 0, fmt.Errorf("run load generator: %w", err)
	}
	if res.Confirmed != n {
		return 0, fmt.Errorf("load generator: %d of %d confirmed (%d nacked, %d unconfirmed)", res.Confirmed, n, res.Nacked, res.Unconfirmed)
	}
	d := time.Duration(last.Load() - res.FirstSend.UnixNano())
	if d <= 0 {
		return 0, errors.New("load generator: empty publish window")
	}
	return float64(n-1) / d.Seconds(), nil
}

// ledgerFigure is the ledger's memory for one run of n jobs.
type ledgerFigure struct {
	jobs                    int64
	heapPerJob, allocPerJob float64
	statePerJob             float64
}

// measureLedger records n jobs published, confirmed and succeeded, as the runner
// does, and reads how much heap the ledger keeps (live, after a GC) and how much
// it allocated on the way.
func measureLedger(n int64) ledgerFigure {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := ledger.New()
	for seq := range n {
		l.Published(seq)
		l.Confirmed(seq, true)
		l.Final(seq, ledger.Succeeded, 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	state := l.Bytes()
	runtime.KeepAlive(l)
	return ledgerFigure{
		jobs:        n,
		heapPerJob:  float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n),
		allocPerJob: float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
		statePerJob: float64(state) / float64(n),
	}
}

// redact keeps the broker password out of an error.
func (r *run) redact(err error) error {
	if err == nil || !strings.Contains(err.Error(), r.cfg.URL) {
		return err
	}
	return &redactedError{err: err, url: r.cfg.URL}
}

type redactedError struct {
	err error
	url string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.url, redact.URL(e.url))
}

func (e *redactedError) Unwrap() error { return e.err }
