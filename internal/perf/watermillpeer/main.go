// Command watermillpeer is the watermill-amqp side of `bench perf`: it consumes
// --count messages from --queue with watermill-amqp's subscriber, acking each, and
// prints the same result line as a `bench perf --child` consumer. It lives in its
// own module so that the bench module does not depend on watermill.
//
// The broker URL comes from $BENCH_PERF_URL. A watermill subscription handles one
// message at a time (it waits for the ack before it takes the next delivery), so
// --concurrency C opens C subscriptions on the queue, each on its own channel with
// prefetch ceil(P/C): the same bound on unacked messages, P, as the other
// consumers' single channel with C handler goroutines.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
)

const envURL = "BENCH_PERF_URL"

// result mirrors perf.ChildResult.
type result struct {
	Impl     string `json:"impl"`
	Count    int64  `json:"count"`
	FirstNS  int64  `json:"first_ns"`
	LastNS   int64  `json:"last_ns"`
	HWMBytes int64  `json:"hwm_bytes"`
	CPUNS    int64  `json:"cpu_ns"`
}

type args struct {
	queue       string
	prefetch    int
	concurrency int
	count       int64
	timeout     time.Duration
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("watermillpeer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a args
	fs.StringVar(&a.queue, "queue", "", "queue to consume")
	fs.IntVar(&a.prefetch, "prefetch", 1, "unacked messages in all (basic.qos, split over the subscriptions)")
	fs.IntVar(&a.concurrency, "concurrency", 1, "subscriptions, each handling one message at a time")
	fs.Int64Var(&a.count, "count", 0, "messages to consume")
	fs.DurationVar(&a.timeout, "timeout", 5*time.Minute, "give up after this long")
	if err := fs.Parse(argv); err != nil {
		return 2
	}
	url := os.Getenv(envURL)
	var errs []error
	if url == "" {
		errs = append(errs, fmt.Errorf("$%s is not set", envURL))
	}
	if a.queue == "" {
		errs = append(errs, errors.New("--queue: required"))
	}
	if a.prefetch < 1 || a.concurrency < 1 || a.count < 1 {
		errs = append(errs, errors.New("--prefetch, --concurrency and --count must be at least 1"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, "watermillpeer:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	res, err := consume(ctx, url, a)
	if err != nil {
		fmt.Fprintln(stderr, "watermillpeer:", strings.ReplaceAll(err.Error(), url, "<url>"))
		return 3
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "watermillpeer: write result:", err)
		return 3
	}
	return 0
}

func consume(ctx context.Context, url string, a args) (result, error) {
	cfg := wamqp.NewDurableQueueConfig(url)
	cfg.Consume.Qos.PrefetchCount = (a.prefetch + a.concurrency - 1) / a.concurrency
	sub, err := wamqp.NewSubscriber(cfg, watermill.NopLogger{})
	if err != nil {
		return result{}, fmt.Errorf("create subscriber: %w", err)
	}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()

	var n, first, last, firstCPU, lastCPU atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range a.concurrency {
		msgs, err := sub.Subscribe(subCtx, a.queue)
		if err != nil {
			stop()
			wg.Wait()
			_ = sub.Close()
			return result{}, fmt.Errorf("subscribe to %q: %w", a.queue, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				k := n.Add(1)
				if k == 1 {
					first.Store(time.Now().UnixNano())
					firstCPU.Store(cpuTime())
				}
				m.Ack()
				if k == a.count {
					lastCPU.Store(cpuTime())
					last.Store(time.Now().UnixNano())
					close(done)
				}
			}
		}()
	}
	var waitErr error
	select {
	case <-done:
	case <-ctx.Done():
		waitErr = fmt.Errorf("consume %d messages (got %d): %w", a.count, n.Load(), ctx.Err())
	}
	if waitErr == nil {
		// m.Ack only signals the subscription goroutine, which then acks on the
		// channel; if it had not yet reached its select when Close fired, it could
		// pick the close and nack the last message instead. It is runnable at once,
		// so a short grace suffices; the caller checks that the queue is empty.
		time.Sleep(50 * time.Millisecond)
	}
	closeErr := sub.Close()
	stop()
	wg.Wait()
	if waitErr != nil {
		return result{}, waitErr
	}
	if closeErr != nil {
		return result{}, fmt.Errorf("close subscriber: %w", closeErr)
	}
	hwm, err := peakRSS()
	if err != nil {
		return result{}, err
	}
	return result{Impl: "peer", Count: a.count, FirstNS: first.Load(), LastNS: last.Load(), HWMBytes: hwm,
		CPUNS: lastCPU.Load() - firstCPU.Load()}, nil
}

// cpuTime returns this process's user+system CPU time in ns (0 if unknown).
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// peakRSS reads VmHWM from /proc/self/status, in bytes.
func peakRSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read peak rss: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
			return 0, fmt.Errorf("parse VmHWM %q: %w", rest, err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("parse status: no VmHWM line")
}
