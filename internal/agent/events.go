package agent

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/benchmq/bench/internal/telemetry"
)

// Event record types of an Events batch. Each record is its type byte and
// uvarint/varint fields; hello and stats carry the worker's own JSON.
const (
	evHello       byte = 1 // worker, len, JSON telemetry.Hello
	evReady       byte = 2 // worker
	evOutcome     byte = 3 // worker, seq, kind, attempt, intended, done, processing
	evRedelivered byte = 4 // worker, seq
	evStats       byte = 5 // worker, len, JSON telemetry.Stats
	evBye         byte = 6 // worker
	evPublished   byte = 7 // seq
	evConfirmed   byte = 8 // seq, ack (0|1)
)

// Encoder collects events into a batch. It is safe for concurrent use; Take
// returns what was collected and starts a new batch.
type Encoder struct {
	mu  sync.Mutex
	buf []byte
}

func (e *Encoder) add(f func(b []byte) []byte) {
	e.mu.Lock()
	e.buf = f(e.buf)
	e.mu.Unlock()
}

// Len is the size of the batch so far.
func (e *Encoder) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.buf)
}

// Take returns the batch and empties the encoder; nil when it is empty.
func (e *Encoder) Take() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.buf) == 0 {
		return nil
	}
	out := e.buf
	e.buf = nil
	return out
}

func appendJSONRecord(b []byte, typ byte, worker int, v any) []byte {
	p, err := json.Marshal(v)
	if err != nil {
		return b // the types here always encode
	}
	b = append(b, typ)
	b = binary.AppendUvarint(b, uint64(worker))
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// Hello records a worker's hello.
func (e *Encoder) Hello(h telemetry.Hello) {
	e.add(func(b []byte) []byte { return appendJSONRecord(b, evHello, h.Worker, h) })
}

// Ready records that a worker consumes.
func (e *Encoder) Ready(worker int) {
	e.add(func(b []byte) []byte { return binary.AppendUvarint(append(b, evReady), uint64(worker)) })
}

// Outcome records a job's final outcome as a worker reported it.
func (e *Encoder) Outcome(worker int, o telemetry.Outcome) {
	e.add(func(b []byte) []byte {
		b = binary.AppendUvarint(append(b, evOutcome), uint64(worker))
		b = binary.AppendVarint(b, o.Seq)
		b = append(b, byte(o.Kind))
		b = binary.AppendUvarint(b, uint64(max(o.Attempt, 0)))
		b = binary.AppendVarint(b, o.Intended)
		b = binary.AppendVarint(b, o.Done)
		return binary.AppendVarint(b, int64(o.Processing))
	})
}

// Redelivered records a redelivery a worker saw.
func (e *Encoder) Redelivered(worker int, seq int64) {
	e.add(func(b []byte) []byte {
		return binary.AppendVarint(binary.AppendUvarint(append(b, evRedelivered), uint64(worker)), seq)
	})
}

// Stats records a worker's stats.
func (e *Encoder) Stats(worker int, s telemetry.Stats) {
	e.add(func(b []byte) []byte { return appendJSONRecord(b, evStats, worker, s) })
}

// Bye records a worker's goodbye.
func (e *Encoder) Bye(worker int) {
	e.add(func(b []byte) []byte { return binary.AppendUvarint(append(b, evBye), uint64(worker)) })
}

// Published records that the generator handed job seq to the broker.
func (e *Encoder) Published(seq int64) {
	e.add(func(b []byte) []byte { return binary.AppendVarint(append(b, evPublished), seq) })
}

// Confirmed records the broker's answer to job seq's publish.
func (e *Encoder) Confirmed(seq int64, ack bool) {
	a := byte(0)
	if ack {
		a = 1
	}
	e.add(func(b []byte) []byte { return append(binary.AppendVarint(append(b, evConfirmed), seq), a) })
}

// Handler receives decoded events in order.
type Handler interface {
	Hello(h telemetry.Hello)
	Ready(worker int)
	Outcome(worker int, o telemetry.Outcome)
	Redelivered(worker int, seq int64)
	Stats(worker int, s telemetry.Stats)
	Bye(worker int)
	Published(seq int64)
	Confirmed(seq int64, ack bool)
}

// eventReader reads the fields of a batch; the first error sticks.
type eventReader struct {
	p   []byte
	err error
}

func (r *eventReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.err = errors.New("truncated field")
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *eventReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.p)
	if n <= 0 {
		r.err = errors.New("truncated field")
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *eventReader) byte() byte {
	if r.err != nil || len(r.p) == 0 {
		r.err = errors.New("truncated field")
		return 0
	}
	c := r.p[0]
	r.p = r.p[1:]
	return c
}

func (r *eventReader) json(v any) {
	n := r.uvarint()
	if r.err != nil {
		return
	}
	if n > uint64(len(r.p)) {
		r.err = errors.New("truncated record")
		return
	}
	r.err = json.Unmarshal(r.p[:n], v)
	r.p = r.p[n:]
}

// DecodeEvents hands every event of a batch to h, in order.
func DecodeEvents(p []byte, h Handler) error {
	r := &eventReader{p: p}
	for len(r.p) > 0 && r.err == nil {
		typ := r.byte()
		switch typ {
		case evHello:
			var hl telemetry.Hello
			w := int(r.uvarint())
			r.json(&hl)
			hl.Worker = w
			if r.err == nil {
				h.Hello(hl)
			}
		case evReady:
			if w := int(r.uvarint()); r.err == nil {
				h.Ready(w)
			}
		case evOutcome:
			w := int(r.uvarint())
			o := telemetry.Outcome{Seq: r.varint(), Kind: telemetry.Kind(r.byte()), Attempt: int(r.uvarint()),
				Intended: r.varint(), Done: r.varint(), Processing: time.Duration(r.varint())}
			if r.err == nil {
				h.Outcome(w, o)
			}
		case evRedelivered:
			w, seq := int(r.uvarint()), r.varint()
			if r.err == nil {
				h.Redelivered(w, seq)
			}
		case evStats:
			var s telemetry.Stats
			w := int(r.uvarint())
			r.json(&s)
			s.Worker = w
			if r.err == nil {
				h.Stats(w, s)
			}
		case evBye:
			if w := int(r.uvarint()); r.err == nil {
				h.Bye(w)
			}
		case evPublished:
			if seq := r.varint(); r.err == nil {
				h.Published(seq)
			}
		case evConfirmed:
			seq, ack := r.varint(), r.byte()
			if r.err == nil {
				h.Confirmed(seq, ack == 1)
			}
		default:
			if r.err == nil {
				r.err = fmt.Errorf("unknown record type %d", typ)
			}
		}
	}
	if r.err != nil {
		return fmt.Errorf("decode events: %w", r.err)
	}
	return nil
}
