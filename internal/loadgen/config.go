package loadgen

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/telemetry"
)

// Header names the harness adds to every job it publishes.
const (
	// HeaderSeq is the job's run-unique sequence number (int64).
	HeaderSeq = telemetry.HeaderSeq
	// HeaderIntended is when the job was meant to be sent (int64 Unix nanoseconds).
	// End-to-end latency runs from here, so a generator that falls behind does not
	// hide the delay it caused.
	HeaderIntended = telemetry.HeaderIntended
)

// Defaults for the zero values of Config.
const (
	DefaultWindow        = 1024
	DefaultLateThreshold = 10 * time.Millisecond
)

// Config configures a Generator.
type Config struct {
	// URL is the AMQP URL to publish to (through a proxy when faults target the
	// broker). It never appears in logs or errors.
	URL string
	// URLs are more brokers, a cluster's other nodes: at every reconnect the
	// generator tries the URL it was last connected to, then the next ones
	// in order (URL first, then URLs), wrapping around.
	URLs []string
	// Exchange and RoutingKey address the jobs: "" and the queue name for a task,
	// the event's exchange and "" for an event. The generator declares nothing.
	Exchange, RoutingKey string
	// Phases is the load, in order.
	Phases []Phase
	// RunID makes sequence numbers' TIDs unique to the run (see TID).
	RunID string
	// FirstSeq is the sequence number of the first job; the rest follow in order.
	FirstSeq int64
	// Window is the most publishes awaiting their confirm; 0 means DefaultWindow.
	Window int
	// LateThreshold is how long after its intended time a send may go out before
	// it counts as late; 0 means DefaultLateThreshold.
	LateThreshold time.Duration
	// Clock tells the time; nil means time.Now. It is called from several
	// goroutines. Waiting for a job's intended time uses real timers for whatever
	// the clock says is left.
	Clock func() time.Time
	// Dial opens connections; nil dials URL with a 10 s connect and handshake
	// timeout. The connection must not have automatic recovery enabled: the
	// generator reconnects itself.
	Dial func(url string) (*amqp.Connection, error)
	// Logger receives reconnects and dial failures; nil means slog.Default().
	Logger *slog.Logger

	// OnPublished is called once per job, just before its publish is handed to
	// the connection. OnConfirmed is called once per published job with the
	// broker's answer: ack, or not (a nack, or the connection died first: the job
	// is unconfirmed and never republished), and the time since it was sent.
	// Both are called from the generator's goroutines, OnConfirmed concurrently
	// with OnPublished, and must be cheap. Either may be nil.
	OnPublished func(seq int64)
	OnConfirmed func(seq int64, ack bool, latency time.Duration)

	// Message, if set, is called for each job right before its publish, with
	// the message as the generator filled it (the harness headers, a body of
	// the phase's size): it may replace the body and set headers and
	// properties (a worker's own job format). The message's headers table is
	// reused for every job, so a header it sets must be set every time. It is
	// called from one goroutine, one job at a time; an error ends Run.
	Message func(j JobInfo, msg *amqp.Publishing) error
}

// JobInfo identifies the job Config.Message fills.
type JobInfo struct {
	Seq      int64
	TID      string
	Intended time.Time
}

func (c *Config) setDefaults() {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.LateThreshold == 0 {
		c.LateThreshold = DefaultLateThreshold
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validate reports everything wrong with c, after setDefaults.
func (c *Config) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url is required"))
	} else if _, err := amqp.ParseURI(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("parse url: %w", uriError(err)))
	}
	for i, u := range c.URLs {
		if _, err := amqp.ParseURI(u); err != nil {
			errs = append(errs, fmt.Errorf("parse urls[%d]: %w", i, uriError(err)))
		}
	}
	if c.Exchange == "" && c.RoutingKey == "" {
		errs = append(errs, errors.New("exchange or routing key is required"))
	}
	if len(c.Phases) == 0 {
		errs = append(errs, errors.New("at least one phase is required"))
	}
	for i, p := range c.Phases {
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("phase %d: %w", i+1, err))
		}
	}
	if c.RunID == "" {
		errs = append(errs, errors.New("run id is required"))
	}
	if c.FirstSeq < 0 {
		errs = append(errs, fmt.Errorf("first seq must not be negative, got %d", c.FirstSeq))
	}
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("window must not be negative, got %d", c.Window))
	}
	if c.LateThreshold < 0 {
		errs = append(errs, fmt.Errorf("late threshold must not be negative, got %s", c.LateThreshold))
	}
	return errors.Join(errs...)
}

// uriError drops the URL (and its password) that url.Parse puts in its errors.
func uriError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
