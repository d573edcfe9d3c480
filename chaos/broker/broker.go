// Package broker provides the RabbitMQ broker a run talks to: an external one
// given by URL, a private rabbitmq-server node this process manages (which
// faults can stop, kill and block), or a testcontainers container.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/redact"
)

// Broker is a RabbitMQ broker a run can use.
type Broker interface {
	// URL is the AMQP URL, credentials included: log it only through
	// redact.URL.
	URL() string
	// Kind is "external", "managed" or "container".
	Kind() string
	// Version is the broker's version as it announces it in connection.start.
	Version(ctx context.Context) (string, error)
	// Close stops and removes what the provider started; a no-op for an
	// external broker. It is safe to call more than once and concurrently.
	Close(ctx context.Context) error
}

// Controller acts on the broker process itself. Managed brokers implement it.
type Controller interface {
	// Stop stops the node gracefully (rabbitmqctl stop). Its data is kept.
	Stop(ctx context.Context) error
	// Start starts a stopped (or killed) node on the same ports with the same
	// data and returns when it accepts AMQP connections.
	Start(ctx context.Context) error
	// Restart is Stop then Start.
	Restart(ctx context.Context) error
	// Kill sends SIGKILL to the Erlang VM, as a crash would; Start brings the
	// node back with whatever it had written to disk.
	Kill(ctx context.Context) error
	// Block raises a memory alarm (high watermark 0): publishing connections
	// receive connection.blocked and stall.
	Block(ctx context.Context) error
	// Unblock restores the default watermark and clears the alarm.
	Unblock(ctx context.Context) error
	// NodeName is the Erlang node name, e.g. bench-1a2b3c4d@localhost.
	NodeName() string
}

// Kinds of broker.
const (
	KindExternal  = "external"
	KindManaged   = "managed"
	KindContainer = "container"
)

// ErrUnavailable marks a broker that cannot be reached or provided: an
// environment failure (exit code 3), not bad input.
var ErrUnavailable = errors.New("broker unavailable")

// defaultDialTimeout bounds a dial when ctx has no deadline.
const defaultDialTimeout = 10 * time.Second

// Dial opens an AMQP connection to url. ctx bounds the TCP connect and the
// AMQP handshake; the connection outlives it. Errors never contain the
// password.
func Dial(ctx context.Context, url string) (*amqp.Connection, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dial %s: %w", redact.URL(url), err)
	}
	var d net.Dialer
	var stop func() bool
	cfg := amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			deadline, ok := ctx.Deadline()
			if !ok {
				deadline = time.Now().Add(defaultDialTimeout)
			}
			// amqp091 clears the deadline once the handshake is done.
			if err := conn.SetDeadline(deadline); err != nil {
				conn.Close()
				return nil, err
			}
			// Cancelling ctx interrupts a handshake in progress.
			stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
			return conn, nil
		},
	}
	conn, err := amqp.DialConfig(url, cfg)
	if stop != nil && !stop() && err == nil {
		// ctx ended right after the handshake: the deadline we set may
		// break the connection later, so do not hand it out.
		conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		return nil, redact.Error(fmt.Errorf("dial %s: %w", redact.URL(url), err), url)
	}
	return conn, nil
}

// ServerVersion connects to url and returns the version the broker announces
// in connection.start.
func ServerVersion(ctx context.Context, url string) (string, error) {
	conn, err := Dial(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	v, ok := conn.Properties["version"].(string)
	if !ok {
		return "", fmt.Errorf("read version of %s: server properties have no version", redact.URL(url))
	}
	return v, nil
}
