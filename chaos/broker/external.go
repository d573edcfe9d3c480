package broker

import (
	"context"
	"fmt"
	"os"

	"github.com/benchmq/bench/internal/redact"
)

// External is a broker someone else runs, known by its URL.
type External struct {
	url string
}

// NewExternal checks that url answers an AMQP handshake and returns it as a
// Broker. An unreachable broker is an ErrUnavailable.
func NewExternal(ctx context.Context, url string) (*External, error) {
	if url == "" {
		return nil, fmt.Errorf("use external broker: empty URL")
	}
	conn, err := Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := conn.Close(); err != nil {
		return nil, redact.Error(fmt.Errorf("close probe connection to %s: %w", redact.URL(url), err), url)
	}
	return &External{url: url}, nil
}

// URL implements Broker.
func (e *External) URL() string { return e.url }

// Kind implements Broker.
func (e *External) Kind() string { return KindExternal }

// Version implements Broker.
func (e *External) Version(ctx context.Context) (string, error) {
	return ServerVersion(ctx, e.url)
}

// Close implements Broker: nothing was started, so nothing is stopped.
func (e *External) Close(context.Context) error { return nil }

// ChooseOptions says where a broker may come from. The zero value starts a
// managed node.
type ChooseOptions struct {
	// FlagURL is --amqp-url. It wins over everything else.
	FlagURL string
	// ScenarioURL is the scenario's broker.url, used when neither the flag
	// nor $AMQP_URL is set.
	ScenarioURL string
	// Managed is the scenario's broker.managed: start a private node even
	// when $AMQP_URL or broker.url is set (the scenario needs to restart or
	// kill its broker). Only an explicit --amqp-url overrides it.
	Managed bool
	// Env reads the environment; nil means os.Getenv. Tests replace it.
	Env func(string) string
	// ManagedConfig configures the managed node, when one is started.
	ManagedConfig ManagedConfig
}

// EnvURL is the environment variable naming an external broker.
const EnvURL = "AMQP_URL"

// Choose provides a broker in the documented order: --amqp-url, then a managed
// node when the scenario asks for one, then $AMQP_URL, then the scenario's
// broker.url, and a managed node when none is given. The caller must Close
// it. Failures wrap ErrUnavailable.
func Choose(ctx context.Context, opts ChooseOptions) (Broker, error) {
	getenv := opts.Env
	if getenv == nil {
		getenv = os.Getenv
	}
	url := opts.FlagURL
	if url == "" && !opts.Managed {
		url = getenv(EnvURL)
		if url == "" {
			url = opts.ScenarioURL
		}
	}
	if url != "" {
		b, err := NewExternal(ctx, url)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	m, err := StartManaged(ctx, opts.ManagedConfig)
	if err != nil {
		return nil, err
	}
	return m, nil
}
