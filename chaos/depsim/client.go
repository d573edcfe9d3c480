package depsim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls a dependency the way a worker's handler calls a third-party
// API: one GET per call, keep-alive connections reused.
type Client struct {
	url     string
	timeout time.Duration
	http    *http.Client
}

// NewClient returns a client for baseURL. Each call gives up after timeout;
// 0 means no limit beyond the caller's context.
func NewClient(baseURL string, timeout time.Duration) *Client {
	tr := &http.Transport{
		// Handler goroutines call concurrently; without enough idle
		// connections per host every call would dial anew.
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{url: baseURL, timeout: timeout, http: &http.Client{Transport: tr}}
}

// Call makes one request. A non-2xx status, a timeout or a transport failure
// is an error. The response body is drained so the connection is reused.
func (c *Client) Call(ctx context.Context) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("call dependency: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call dependency: %w", err)
	}
	_, copyErr := io.Copy(io.Discard, resp.Body)
	closeErr := resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Code: resp.StatusCode}
	}
	if copyErr != nil {
		return fmt.Errorf("call dependency: read body: %w", copyErr)
	}
	if closeErr != nil {
		return fmt.Errorf("call dependency: close body: %w", closeErr)
	}
	return nil
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() {
	c.http.CloseIdleConnections()
}

// StatusError is a call answered with a non-2xx status.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("call dependency: status %d %s", e.Code, http.StatusText(e.Code))
}
