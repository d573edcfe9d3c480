package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// External manages proxies on a toxiproxy-server reached over its HTTP API
// (chaos.toxiproxy_url), for when the proxies have to run somewhere else,
// e.g. next to a remote broker. It speaks the API directly rather than
// through toxiproxy's Go client, which takes no context.
type External struct {
	api  *url.URL
	http *http.Client

	mu      sync.Mutex
	proxies []*RemoteProxy
}

// NewExternal returns a manager for the toxiproxy-server at apiURL, e.g.
// "http://127.0.0.1:8474".
func NewExternal(apiURL string) (*External, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("parse toxiproxy URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("parse toxiproxy URL %q: want http(s)://host:port", apiURL)
	}
	return &External{api: u, http: &http.Client{}}, nil
}

type remoteProxyJSON struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  bool   `json:"enabled"`
}

// Add creates a proxy named name on the server, listening on listen (e.g.
// "0.0.0.0:0" for a free port on every interface) and forwarding to
// upstream. A proxy of that name left over from an earlier run is replaced.
func (e *External) Add(ctx context.Context, name, listen, upstream string) (*RemoteProxy, error) {
	if name == "" || listen == "" || upstream == "" {
		return nil, fmt.Errorf("add proxy %q: name, listen and upstream are required", name)
	}
	// A leftover proxy of a crashed run would hold the name.
	if err := e.do(ctx, http.MethodDelete, "/proxies/"+url.PathEscape(name), nil, nil); err != nil && !isStatus(err, http.StatusNotFound) {
		return nil, fmt.Errorf("remove old proxy %q: %w", name, err)
	}
	var got remoteProxyJSON
	req := remoteProxyJSON{Name: name, Listen: listen, Upstream: upstream, Enabled: true}
	if err := e.do(ctx, http.MethodPost, "/proxies", req, &got); err != nil {
		return nil, fmt.Errorf("add proxy %q: %w", name, err)
	}
	p := &RemoteProxy{e: e, name: name, addr: e.reachable(got.Listen), toxics: make(map[string][]string)}
	e.mu.Lock()
	e.proxies = append(e.proxies, p)
	e.mu.Unlock()
	return p, nil
}

// reachable turns the server's listen address into one a client can dial:
// an unspecified host (0.0.0.0, ::) becomes the API's host.
func (e *External) reachable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort(e.api.Hostname(), port)
	}
	return listen
}

// Close deletes every proxy this manager created.
func (e *External) Close(ctx context.Context) error {
	e.mu.Lock()
	proxies := e.proxies
	e.proxies = nil
	e.mu.Unlock()
	var errs []error
	for _, p := range proxies {
		if err := e.do(ctx, http.MethodDelete, "/proxies/"+url.PathEscape(p.name), nil, nil); err != nil && !isStatus(err, http.StatusNotFound) {
			errs = append(errs, fmt.Errorf("delete proxy %q: %w", p.name, err))
		}
	}
	e.http.CloseIdleConnections()
	return errors.Join(errs...)
}

// statusError is a non-2xx answer of the toxiproxy API.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return fmt.Sprintf("toxiproxy API: %d %s", e.code, e.msg) }

func isStatus(err error, code int) bool {
	var se *statusError
	return errors.As(err, &se) && se.code == code
}

// do sends body as JSON and decodes the answer into out, when not nil.
func (e *External) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		r = bytes.NewReader(data)
	}
	u := *e.api
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var apiErr struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &apiErr) == nil && apiErr.Error != "" {
			msg = apiErr.Error
		}
		return &statusError{code: resp.StatusCode, msg: msg}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// RemoteProxy is a proxy on a toxiproxy-server.
type RemoteProxy struct {
	e    *External
	name string
	addr string

	mu     sync.Mutex
	toxics map[string][]string
}

var _ Target = (*RemoteProxy)(nil)

// Addr returns the address clients dial to go through the proxy.
func (p *RemoteProxy) Addr() string { return p.addr }

func (p *RemoteProxy) path() string { return "/proxies/" + url.PathEscape(p.name) }

// AddToxic adds t on the server.
func (p *RemoteProxy) AddToxic(ctx context.Context, t Toxic) error {
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
		body := toxicJSON{Name: name, Type: t.Type, Stream: dir, Toxicity: t.toxicity(), Attributes: t.Attrs}
		if err := p.e.do(ctx, http.MethodPost, p.path()+"/toxics", body, nil); err != nil {
			for _, a := range added {
				// Best effort: undo the first direction of a half-added pair.
				_ = p.e.do(context.WithoutCancel(ctx), http.MethodDelete, p.path()+"/toxics/"+url.PathEscape(a), nil, nil)
			}
			return fmt.Errorf("add toxic %q to proxy %q: %w", t.Name, p.name, err)
		}
		added = append(added, name)
	}
	p.toxics[t.Name] = added
	return nil
}

// RemoveToxic removes the toxic added under name, in every direction.
func (p *RemoteProxy) RemoveToxic(ctx context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	names, ok := p.toxics[name]
	if !ok {
		return fmt.Errorf("remove toxic %q from proxy %q: no such toxic", name, p.name)
	}
	var errs []error
	for _, n := range names {
		if err := p.e.do(ctx, http.MethodDelete, p.path()+"/toxics/"+url.PathEscape(n), nil, nil); err != nil {
			errs = append(errs, fmt.Errorf("remove toxic %q from proxy %q: %w", n, p.name, err))
		}
	}
	delete(p.toxics, name)
	return errors.Join(errs...)
}

// Down disables the proxy: open connections are cut, new ones refused.
func (p *RemoteProxy) Down(ctx context.Context) error {
	if err := p.e.do(ctx, http.MethodPost, p.path(), map[string]bool{"enabled": false}, nil); err != nil {
		return fmt.Errorf("take proxy %q down: %w", p.name, err)
	}
	return nil
}

// Up enables the proxy again.
func (p *RemoteProxy) Up(ctx context.Context) error {
	if err := p.e.do(ctx, http.MethodPost, p.path(), map[string]bool{"enabled": true}, nil); err != nil {
		return fmt.Errorf("bring proxy %q up: %w", p.name, err)
	}
	return nil
}
