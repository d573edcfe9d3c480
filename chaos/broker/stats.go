package broker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Stats reads the broker's own figures from the management plugin's HTTP API:
// a queue's ready and unacknowledged counts and the node's memory. A harness
// can only derive unacked messages from outside (AMQP's queue.declare says
// nothing of them); the broker counts them.
type Stats struct {
	c     mgmtClient
	vhost string
	node  string
}

// QueueCounts is what the broker counts of a queue.
type QueueCounts struct {
	Ready     int64 // messages waiting
	Unacked   int64 // delivered to consumers and not yet acknowledged
	Consumers int64
}

// Stats returns the reader of the node's figures, or nil when the node runs
// without the management plugin (ManagedConfig.Management).
func (m *Managed) Stats() *Stats {
	if m.info.ManagementPort == 0 {
		return nil
	}
	u, err := url.Parse(m.info.URL)
	if err != nil {
		return nil
	}
	pass, _ := u.User.Password()
	return &Stats{c: mgmtClient{base: m.ManagementURL(), user: u.User.Username(), pass: pass}, vhost: vhostOf(u), node: m.info.Node}
}

// DefaultManagementPort is where the management plugin listens unless
// configured otherwise.
const DefaultManagementPort = "15672"

// ProbeStats returns the reader of an external broker's figures when its
// management plugin answers at managementURL (http://host:port; "" means the
// AMQP URL's host at DefaultManagementPort) with the AMQP URL's credentials,
// within ctx; an error otherwise (the broker lacks the plugin, or hides it).
func ProbeStats(ctx context.Context, amqpURL, managementURL string) (*Stats, error) {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return nil, fmt.Errorf("parse broker url: %w", err)
	}
	if managementURL == "" {
		managementURL = "http://" + net.JoinHostPort(u.Hostname(), DefaultManagementPort)
	}
	pass, _ := u.User.Password()
	s := &Stats{c: mgmtClient{base: managementURL, user: u.User.Username(), pass: pass}, vhost: vhostOf(u)}
	var ov struct {
		Node string `json:"node"`
	}
	if err := s.c.do(ctx, http.MethodGet, "/api/overview", nil, &ov); err != nil {
		return nil, fmt.Errorf("probe the management API: %w", err)
	}
	s.node = ov.Node
	return s, nil
}

func vhostOf(u *url.URL) string {
	if p := u.Path; len(p) > 1 {
		if v, err := url.PathUnescape(p[1:]); err == nil {
			return v
		}
	}
	return "/"
}

// Queue returns a queue's counts. The broker refreshes them every
// collect_statistics_interval (a managed node with the plugin: 250 ms).
func (s *Stats) Queue(ctx context.Context, name string) (QueueCounts, error) {
	var q struct {
		Ready     int64 `json:"messages_ready"`
		Unacked   int64 `json:"messages_unacknowledged"`
		Consumers int64 `json:"consumers"`
	}
	// No ?columns= here: with it, RabbitMQ 3.10 answers a single queue with an array.
	path := "/api/queues/" + url.PathEscape(s.vhost) + "/" + url.PathEscape(name)
	if err := s.c.do(ctx, http.MethodGet, path, nil, &q); err != nil {
		return QueueCounts{}, fmt.Errorf("read queue %q from the management API: %w", name, err)
	}
	return QueueCounts(q), nil
}

// Memory returns the bytes the node uses (mem_used: what its memory alarm
// compares with the watermark).
func (s *Stats) Memory(ctx context.Context) (int64, error) {
	var ns []struct {
		Name    string `json:"name"`
		MemUsed int64  `json:"mem_used"`
	}
	if err := s.c.do(ctx, http.MethodGet, "/api/nodes?columns=name,mem_used", nil, &ns); err != nil {
		return 0, fmt.Errorf("read node memory from the management API: %w", err)
	}
	// RABBITMQ_NODENAME without a host gets the machine's short name.
	for _, n := range ns {
		if n.Name == s.node || strings.HasPrefix(n.Name, s.node+"@") || len(ns) == 1 {
			return n.MemUsed, nil
		}
	}
	return 0, fmt.Errorf("read node memory from the management API: no node %s among %d", s.node, len(ns))
}
