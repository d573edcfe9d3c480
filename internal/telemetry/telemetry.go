// Package telemetry carries what worker processes report to the runner: each
// job's final outcome, redeliveries, and periodic stats. It runs over its own
// TCP connection to the runner, which no fault injected into the broker path
// touches, and works the same for a worker on another host or a user's own
// worker binary built on the runtime.
//
// Frames are a type byte, a uvarint payload length and the payload. Outcomes are
// fixed-size binary records (the hot path); stats and hello are JSON.
package telemetry

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Frame types.
const (
	frameHello       byte = 1
	frameReady       byte = 2
	frameOutcome     byte = 3
	frameRedelivered byte = 4
	frameStats       byte = 5
	frameBye         byte = 6
)

const maxFrame = 1 << 20

// Kind is a final outcome reported by a worker.
type Kind uint8

// Outcome kinds.
const (
	Succeeded Kind = 1
	Recovered Kind = 2
)

// Outcome is one job's final outcome.
type Outcome struct {
	Seq        int64
	Kind       Kind
	Attempt    int           // the attempt that ended the job (1 = first)
	Intended   int64         // the job's intended send time, Unix ns (from its headers)
	Done       int64         // when the worker finished it, Unix ns, right before the ack
	Processing time.Duration // time in the handler for the final attempt
}

const outcomeSize = 8 + 1 + 2 + 8 + 8 + 8

// outcomeDoneOffset is where Done sits in an outcome's frame.
const outcomeDoneOffset = 2 + 8 + 1 + 2 + 8

// Hello identifies a worker process on connect.
type Hello struct {
	Worker int    `json:"worker"`
	PID    int    `json:"pid"`
	Host   string `json:"host"`
	// Settings are the runtime settings in force in the process, as it
	// reports them (the result records them as they are).
	Settings json.RawMessage `json:"settings,omitempty"`
}

// Stats is a worker process's periodic report.
type Stats struct {
	Worker         int     `json:"worker"`
	At             int64   `json:"at"` // Unix ns
	RSSBytes       int64   `json:"rss_bytes"`
	HeapBytes      int64   `json:"heap_bytes"`
	Goroutines     int     `json:"goroutines"`
	InFlight       int64   `json:"in_flight"`
	Unacked        int64   `json:"unacked"` // deliveries held: prefetched or in flight
	Started        int64   `json:"started"`
	Acked          int64   `json:"acked"`
	Failed         int64   `json:"failed"`
	Retried        int64   `json:"retried"`
	Recovered      int64   `json:"recovered"`
	DeadLettered   int64   `json:"dead_lettered"`
	Reconnects     int64   `json:"reconnects"`
	BreakerState   string  `json:"breaker_state"`
	BreakerOpened  int64   `json:"breaker_opened"`
	BreakerOpenSec float64 `json:"breaker_open_seconds"`
	ConsumerActive bool    `json:"consumer_active"`
	Blocked        bool    `json:"blocked"`
	DepCalls       int64   `json:"dependency_calls"`
	DepErrors      int64   `json:"dependency_errors"`
}

func appendFrame(buf []byte, typ byte, payload []byte) []byte {
	buf = append(buf, typ)
	buf = binary.AppendUvarint(buf, uint64(len(payload)))
	return append(buf, payload...)
}

// AppendOutcome appends o's frame to buf.
func AppendOutcome(buf []byte, o Outcome) []byte {
	buf = append(buf, frameOutcome, outcomeSize)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(o.Seq))
	buf = append(buf, byte(o.Kind))
	att := o.Attempt
	if att > math.MaxUint16 {
		att = math.MaxUint16
	}
	buf = binary.LittleEndian.AppendUint16(buf, uint16(att))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(o.Intended))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(o.Done))
	return binary.LittleEndian.AppendUint64(buf, uint64(o.Processing))
}

func decodeOutcome(p []byte) (Outcome, error) {
	if len(p) != outcomeSize {
		return Outcome{}, fmt.Errorf("decode outcome: %d bytes, want %d", len(p), outcomeSize)
	}
	o := Outcome{
		Seq:        int64(binary.LittleEndian.Uint64(p)),
		Kind:       Kind(p[8]),
		Attempt:    int(binary.LittleEndian.Uint16(p[9:])),
		Intended:   int64(binary.LittleEndian.Uint64(p[11:])),
		Done:       int64(binary.LittleEndian.Uint64(p[19:])),
		Processing: time.Duration(binary.LittleEndian.Uint64(p[27:])),
	}
	if o.Kind != Succeeded && o.Kind != Recovered {
		return Outcome{}, fmt.Errorf("decode outcome: unknown kind %d", o.Kind)
	}
	return o, nil
}

func appendJSON(buf []byte, typ byte, v any) ([]byte, error) {
	p, err := json.Marshal(v)
	if err != nil {
		return buf, fmt.Errorf("encode telemetry: %w", err)
	}
	return appendFrame(buf, typ, p), nil
}

// Conn receives what one worker connection reports, in order. Different
// connections call their Conns concurrently.
type Conn interface {
	Ready()
	Outcome(o Outcome)
	Redelivered(seq int64)
	Stats(s Stats)
	Bye()
}

// Accept is called with a connection's Hello and returns its Conn.
type Accept func(h Hello) Conn

// decode reads frames from r until EOF and hands them to the Conn that accept
// returns for the first frame, which must be a Hello.
func decode(r io.ByteReader, rd io.Reader, accept Accept) error {
	var h Conn
	worker := -1
	var buf []byte
	for {
		typ, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read frame: %w", err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("read frame length: %w", err)
		}
		if n > maxFrame {
			return fmt.Errorf("read frame: %d bytes is more than %d", n, maxFrame)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(rd, buf); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		if h == nil && typ != frameHello {
			return fmt.Errorf("read frame: type %d before hello", typ)
		}
		switch typ {
		case frameHello:
			var hl Hello
			if err := json.Unmarshal(buf, &hl); err != nil {
				return fmt.Errorf("decode hello: %w", err)
			}
			if h != nil {
				return errors.New("decode hello: a second hello")
			}
			worker = hl.Worker
			h = accept(hl)
		case frameReady:
			h.Ready()
		case frameOutcome:
			o, err := decodeOutcome(buf)
			if err != nil {
				return err
			}
			h.Outcome(o)
		case frameRedelivered:
			if len(buf) != 8 {
				return fmt.Errorf("decode redelivered: %d bytes", len(buf))
			}
			h.Redelivered(int64(binary.LittleEndian.Uint64(buf)))
		case frameStats:
			var s Stats
			if err := json.Unmarshal(buf, &s); err != nil {
				return fmt.Errorf("decode stats: %w", err)
			}
			s.Worker = worker
			h.Stats(s)
		case frameBye:
			h.Bye()
		default:
			return fmt.Errorf("read frame: unknown type %d", typ)
		}
	}
}
