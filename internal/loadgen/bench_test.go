package loadgen

import (
	"context"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/worker"
)

// The generator against the plainest pipelined publisher amqp091-go allows:
// same window, 100-byte persistent messages, no headers (RawHeaders adds the
// generator's headers). Compare msgs/s, which the broker mostly sets, and the
// client's CPU time per message, which is the generator's own cost:
//
//	go test -run '^$' -bench . -benchtime 20000x ./internal/loadgen/
const benchWindow = DefaultWindow

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, took, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/took.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkGenerator(b *testing.B) {
	tb := newTestBroker(b)
	q := tb.queue(b)
	g, err := New(Config{URL: tb.url, RoutingKey: q, RunID: "bench", Window: benchWindow, Logger: quietLogger(),
		Phases: []Phase{{Kind: KindSpike, Jobs: int64(b.N), Size: 100}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	res, err := g.Run(ctx, start)
	took, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Confirmed != int64(b.N) {
		b.Fatalf("confirmed %d of %d", res.Confirmed, b.N)
	}
	report(b, took, cpu)
}

func BenchmarkRawPipelined(b *testing.B) { benchRaw(b, false) }

func BenchmarkRawHeaders(b *testing.B) { benchRaw(b, true) }

func benchRaw(b *testing.B, headers bool) {
	tb := newTestBroker(b)
	q := tb.queue(b)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	conn, err := amqp.Dial(tb.url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, benchWindow))
	sem := make(chan struct{}, benchWindow)
	acked := make(chan int, 1)
	go func() {
		n := 0
		for c := range confirms {
			if c.Ack {
				n++
			}
			<-sem
			if c.DeliveryTag == uint64(b.N) {
				break
			}
		}
		acked <- n
	}()
	body := make([]byte, 100)
	for range b.N {
		sem <- struct{}{}
		msg := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}
		if headers {
			msg.Headers = amqp.Table{worker.HeaderTID: TID("x", 1), worker.HeaderAttempt: int32(1), worker.HeaderFirstPublished: time.Now().UnixMilli(), HeaderSeq: int64(7), HeaderIntended: time.Now().UnixNano()}
			msg.MessageId = TID("x", 1)
			msg.Timestamp = time.Now()
		}
		if err := ch.Publish("", q, false, false, msg); err != nil {
			b.Fatal(err)
		}
	}
	n := <-acked
	took, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if n != b.N {
		b.Fatalf("acked %d of %d", n, b.N)
	}
	report(b, took, cpu)
}
