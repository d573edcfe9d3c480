package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Target is a proxy faults are applied to. *Proxy implements it.
type Target interface {
	// Addr is the proxy's listen address, host:port.
	Addr() string
	// AddToxic adds t; a toxic with stream both adds one toxic per direction.
	AddToxic(ctx context.Context, t Toxic) error
	// RemoveToxic removes the toxic added under name, in every direction.
	RemoveToxic(ctx context.Context, name string) error
	// Down stops accepting connections and cuts the open ones.
	Down(ctx context.Context) error
	// Up accepts connections again on the same address.
	Up(ctx context.Context) error
}

// Set is one embedded toxiproxy server with its proxies.
type Set struct {
	srv *toxiproxy.ApiServer

	mu      sync.Mutex
	proxies map[string]*Proxy
	closed  bool
}

// New returns an empty Set. Close it to stop its proxies.
func New() *Set {
	return &Set{
		srv:     toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: make(map[string]*Proxy),
	}
}

// Add starts a proxy named name that listens on 127.0.0.1 on a free port and
// forwards to upstream (host:port).
func (s *Set) Add(name, upstream string) (*Proxy, error) {
	var errs []error
	if name == "" {
		errs = append(errs, errors.New("proxy name is empty"))
	}
	if upstream == "" {
		errs = append(errs, errors.New("upstream is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("add proxy %q: %w", name, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("add proxy %q: set is closed", name)
	}
	if _, ok := s.proxies[name]; ok {
		return nil, fmt.Errorf("add proxy %q: name already taken", name)
	}
	tp := toxiproxy.NewProxy(s.srv, name, "127.0.0.1:0", upstream)
	if err := s.srv.Collection.Add(tp, true); err != nil {
		return nil, fmt.Errorf("start proxy %q: %w", name, err)
	}
	// Listen holds the bound port once started; it is written under the
	// proxy's lock, so read it under the same lock.
	tp.Lock()
	addr := tp.Listen
	tp.Unlock()
	p := &Proxy{name: name, addr: addr, upstream: upstream, tp: tp, toxics: make(map[string][]string)}
	s.proxies[name] = p
	return p, nil
}

// Proxy returns the proxy named name, or nil.
func (s *Set) Proxy(name string) *Proxy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proxies[name]
}

// Close stops every proxy and cuts its connections. The goroutines toxiproxy
// runs per connection end as soon as the closed sockets are noticed.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.srv.Collection.Clear(); err != nil {
		return fmt.Errorf("stop proxies: %w", err)
	}
	return nil
}

// Proxy is one TCP proxy of a Set.
type Proxy struct {
	name     string
	addr     string
	upstream string
	tp       *toxiproxy.Proxy

	mu     sync.Mutex
	toxics map[string][]string // toxic name -> toxiproxy toxic names (two for stream both)
}

var _ Target = (*Proxy)(nil)

// Name returns the proxy's name.
func (p *Proxy) Name() string { return p.name }

// Addr returns the address the proxy listens on, "127.0.0.1:port". It stays
// the same across Down and Up.
func (p *Proxy) Addr() string { return p.addr }

// Upstream returns the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// AddToxic adds t to the proxy. It applies to open connections and new ones.
// The embedded server does not block on the network, so ctx is not consulted.
func (p *Proxy) AddToxic(_ context.Context, t Toxic) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("add toxic to proxy %q: %w", p.name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.toxics[t.Name]; ok {
		return fmt.Errorf("add toxic %q to proxy %q: name already taken", t.Name, p.name)
	}
	dirs := t.directions()
	var added []string
	for _, dir := range dirs {
		name := t.Name
		if len(dirs) > 1 {
			name = t.Name + "_" + dir
		}
		body, err := json.Marshal(toxicJSON{
			Name:       name,
			Type:       t.Type,
			Stream:     dir,
			Toxicity:   t.toxicity(),
			Attributes: t.Attrs,
		})
		if err != nil {
			return fmt.Errorf("encode toxic %q: %w", t.Name, err)
		}
		if _, err := p.tp.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
			for _, a := range added {
				// Best effort: undo the first direction of a half-added pair.
				_ = p.tp.Toxics.RemoveToxic(context.Background(), a)
			}
			return fmt.Errorf("add toxic %q to proxy %q: %w", t.Name, p.name, err)
		}
		added = append(added, name)
	}
	p.toxics[t.Name] = added
	return nil
}

type toxicJSON struct {
	Name       string           `json:"name"`
	Type       string           `json:"type"`
	Stream     string           `json:"stream"`
	Toxicity   float32          `json:"toxicity"`
	Attributes map[string]int64 `json:"attributes"`
}

// RemoveToxic removes the toxic added under name, in both directions if it
// was added with stream both. Data a toxic holds back (latency) is delivered.
func (p *Proxy) RemoveToxic(ctx context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	names, ok := p.toxics[name]
	if !ok {
		return fmt.Errorf("remove toxic %q from proxy %q: no such toxic", name, p.name)
	}
	var errs []error
	for _, n := range names {
		if err := p.tp.Toxics.RemoveToxic(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("remove toxic %q from proxy %q: %w", n, p.name, err))
		}
	}
	delete(p.toxics, name)
	return errors.Join(errs...)
}

// Toxics returns the names of the toxics currently on the proxy.
func (p *Proxy) Toxics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(p.toxics))
	for n := range p.toxics {
		names = append(names, n)
	}
	return names
}

// Down closes the listener and every open connection; new connections are
// refused until Up. Toxics stay in place. Down on a down proxy does nothing.
func (p *Proxy) Down(context.Context) error {
	p.tp.Stop()
	return nil
}

// Up listens again on the same address. Up on an up proxy does nothing.
func (p *Proxy) Up(context.Context) error {
	err := p.tp.Start()
	if err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
		return fmt.Errorf("bring proxy %q up on %s: %w", p.name, p.addr, err)
	}
	return nil
}
