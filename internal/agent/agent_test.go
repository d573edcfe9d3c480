package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/telemetry"
)

type recorder struct{ got []any }

func (r *recorder) Hello(h telemetry.Hello)            { r.got = append(r.got, h) }
func (r *recorder) Ready(w int)                        { r.got = append(r.got, [2]any{"ready", w}) }
func (r *recorder) Outcome(w int, o telemetry.Outcome) { r.got = append(r.got, [2]any{w, o}) }
func (r *recorder) Redelivered(w int, seq int64) {
	r.got = append(r.got, [3]any{"redelivered", w, seq})
}
func (r *recorder) Stats(w int, s telemetry.Stats) { r.got = append(r.got, s) }
func (r *recorder) Bye(w int)                      { r.got = append(r.got, [2]any{"bye", w}) }
func (r *recorder) Published(seq int64)            { r.got = append(r.got, [2]any{"pub", seq}) }
func (r *recorder) Confirmed(seq int64, ack bool)  { r.got = append(r.got, [3]any{"conf", seq, ack}) }

func TestEventsRoundTrip(t *testing.T) {
	var e Encoder
	o := telemetry.Outcome{Seq: 1 << 40, Kind: telemetry.Recovered, Attempt: 3, Intended: time.Now().UnixNano(), Done: time.Now().UnixNano() + 5, Processing: 7 * time.Millisecond}
	want := []any{
		telemetry.Hello{Worker: 7, PID: 42, Host: "h"},
		[2]any{"ready", 7},
		[2]any{7, o},
		[3]any{"redelivered", 7, int64(9)},
		telemetry.Stats{Worker: 7, RSSBytes: 1 << 20, BreakerState: "closed"},
		[2]any{"bye", 7},
		[2]any{"pub", int64(0)},
		[3]any{"conf", int64(0), true},
		[3]any{"conf", int64(1), false},
	}
	e.Hello(telemetry.Hello{Worker: 7, PID: 42, Host: "h"})
	e.Ready(7)
	e.Outcome(7, o)
	e.Redelivered(7, 9)
	e.Stats(7, telemetry.Stats{RSSBytes: 1 << 20, BreakerState: "closed"})
	e.Bye(7)
	e.Published(0)
	e.Confirmed(0, true)
	e.Confirmed(1, false)
	b := e.Take()
	if e.Take() != nil {
		t.Fatal("Take did not empty the encoder")
	}
	var r recorder
	if err := DecodeEvents(b, &r); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.got, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", r.got, want)
	}
	if err := DecodeEvents(b[:len(b)-1], &recorder{}); err == nil {
		t.Fatal("a truncated batch decoded without error")
	}
	if err := DecodeEvents([]byte{99}, &recorder{}); err == nil {
		t.Fatal("an unknown record type decoded without error")
	}
}

func TestEstimateOffsetPicksShortestRoundTrip(t *testing.T) {
	const ms = int64(time.Millisecond)
	// The peer is 100 ms ahead. Probe 1 waited 40 ms in a queue on its way
	// back; probe 2 is symmetric with 2 ms each way.
	probes := []Pong{
		{T0: 0, T1: 100*ms + 2*ms, T2: 100*ms + 3*ms},
		{T0: 10 * ms, T1: 110*ms + 2*ms, T2: 110*ms + 3*ms},
	}
	t3 := []int64{3*ms + 2*ms + 40*ms, 10*ms + 5*ms}
	o, err := EstimateOffset(probes, t3)
	if err != nil {
		t.Fatal(err)
	}
	if o.Offset != 100*time.Millisecond || o.RTT != 4*time.Millisecond || o.Uncertainty != 2*time.Millisecond || o.Probes != 2 {
		t.Fatalf("offset %+v, want 100ms ± 2ms from the 4 ms round trip", o)
	}
	if got := o.FromPeer(o.ToPeer(12345)); got != 12345 {
		t.Fatalf("FromPeer(ToPeer(x)) = %d", got)
	}
	if _, err := EstimateOffset(nil, nil); err == nil {
		t.Fatal("no probes gave an offset")
	}
}
