package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// mgmtClient calls the management plugin's HTTP API of a node. The
// credentials go in a header, never in a URL, so no error carries them.
type mgmtClient struct {
	base       string // http://host:port
	user, pass string
}

// mgmtHTTP is shared by every client: its connections are to private nodes.
var mgmtHTTP = &http.Client{Timeout: 30 * time.Second}

// errMgmtNotFound is a 404 from the management API.
var errMgmtNotFound = errors.New("not found")

func (c mgmtClient) do(ctx context.Context, method, path string, header http.Header, out any) error {
	u := c.base + path
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	req.SetBasicAuth(c.user, c.pass)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := mgmtHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, u, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w", method, u, errMgmtNotFound)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, tail(string(body), 300))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, u, err)
	}
	return nil
}

// mgmtQueue is the part of GET /api/queues/VHOST/NAME that bench reads.
type mgmtQueue struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`   // classic | quorum | stream
	Node      string   `json:"node"`   // a classic queue's home node; a quorum queue's leader
	Leader    string   `json:"leader"` // quorum queues
	Members   []string `json:"members"`
	Online    []string `json:"online"`
	Consumers int      `json:"consumers"`
	Messages  int      `json:"messages"`
}

func (c mgmtClient) queue(ctx context.Context, vhost, name string) (mgmtQueue, error) {
	var q mgmtQueue
	err := c.do(ctx, http.MethodGet, "/api/queues/"+url.PathEscape(vhost)+"/"+url.PathEscape(name), nil, &q)
	return q, err
}

// mgmtNode is an entry of GET /api/nodes.
type mgmtNode struct {
	Name       string   `json:"name"`
	Running    bool     `json:"running"`
	Partitions []string `json:"partitions"`
}

func (c mgmtClient) nodes(ctx context.Context) ([]mgmtNode, error) {
	var ns []mgmtNode
	err := c.do(ctx, http.MethodGet, "/api/nodes?columns=name,running,partitions", nil, &ns)
	return ns, err
}

// mgmtConnection is an entry of GET /api/connections.
type mgmtConnection struct {
	Name             string `json:"name"`
	UserProvidedName string `json:"user_provided_name"`
}

func (c mgmtClient) connections(ctx context.Context) ([]mgmtConnection, error) {
	var cs []mgmtConnection
	err := c.do(ctx, http.MethodGet, "/api/connections?columns=name,user_provided_name", nil, &cs)
	return cs, err
}

// closeConnection closes a client connection; the client receives
// connection.close with reason.
func (c mgmtClient) closeConnection(ctx context.Context, name, reason string) error {
	h := http.Header{"X-Reason": {reason}}
	return c.do(ctx, http.MethodDelete, "/api/connections/"+url.PathEscape(name), h, nil)
}

// closeConnections closes every client connection whose client-provided
// name is not in except, and returns how many it closed. A connection that
// went away on its own meanwhile does not count.
func closeConnections(ctx context.Context, c mgmtClient, except []string) (int, error) {
	cs, err := c.connections(ctx)
	if err != nil {
		return 0, fmt.Errorf("list connections: %w", err)
	}
	keep := make(map[string]bool, len(except))
	for _, n := range except {
		keep[n] = true
	}
	closed := 0
	var errs []error
	for _, conn := range cs {
		if conn.UserProvidedName != "" && keep[conn.UserProvidedName] {
			continue
		}
		err := c.closeConnection(ctx, conn.Name, "bench: close_connections fault")
		switch {
		case err == nil:
			closed++
		case errors.Is(err, errMgmtNotFound):
		default:
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return closed, fmt.Errorf("close connections: %w", err)
	}
	return closed, nil
}

// nodeIndex finds an Erlang node name in names; it returns 1-based i, or 0.
func nodeIndex(names []string, node string) int {
	for i, n := range names {
		if strings.EqualFold(n, node) {
			return i + 1
		}
	}
	return 0
}
