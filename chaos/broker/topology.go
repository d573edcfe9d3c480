package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"syscall"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/redact"
)

// TopologyOp names a topology fault: something done to what a broker holds
// while its nodes stay up.
type TopologyOp string

// Topology faults.
const (
	OpDeleteQueue      TopologyOp = "delete_queue"
	OpCloseConnections TopologyOp = "close_connections"
	OpCancelConsumers  TopologyOp = "cancel_consumers"
	OpMemoryAlarm      TopologyOp = "memory_alarm"
	OpDiskAlarm        TopologyOp = "disk_alarm"
)

// TopologyOps lists every topology fault.
var TopologyOps = []TopologyOp{OpDeleteQueue, OpCloseConnections, OpCancelConsumers, OpMemoryAlarm, OpDiskAlarm}

// Topology applies topology faults to a broker: a single managed node, a
// cluster or an external broker (what each supports, Supports says). Queues
// are in the default virtual host of the broker's URL.
type Topology interface {
	// Supports returns nil when op can be applied to this broker, else an
	// error wrapping ErrUnsupported that says why. It acts on nothing, so a
	// scenario can be checked before its run.
	Supports(op TopologyOp) error
	// DeleteQueue deletes the queue and returns how many ready messages went
	// with it. Consumers receive basic.cancel. A queue that does not exist
	// is an error wrapping ErrNoQueue.
	DeleteQueue(ctx context.Context, queue string) (messages int, err error)
	// CloseConnections closes every client connection (the client receives
	// connection.close, as when an operator closes it) except those whose
	// client-provided connection name is in except, and returns how many it
	// closed.
	CloseConnections(ctx context.Context, except ...string) (closed int, err error)
	// CancelConsumers makes the broker send basic.cancel to the queue's
	// consumers without deleting the queue or its persistent messages.
	CancelConsumers(ctx context.Context, queue string) error
	// RaiseMemoryAlarm sets the memory high watermark to 0: publishing
	// connections receive connection.blocked and stall.
	RaiseMemoryAlarm(ctx context.Context) error
	// ClearMemoryAlarm restores the watermark and clears the alarm.
	ClearMemoryAlarm(ctx context.Context) error
	// RaiseDiskAlarm sets the free disk limit above the free space: the same
	// blocking, through the other resource alarm.
	RaiseDiskAlarm(ctx context.Context) error
	// ClearDiskAlarm restores RabbitMQ's default limit (50 MB).
	ClearDiskAlarm(ctx context.Context) error
}

// ErrNoQueue marks a queue that does not exist.
var ErrNoQueue = errors.New("no such queue")

// defaultDiskFreeLimit is RabbitMQ's default disk_free_limit, in bytes;
// managed nodes run with it, and ClearDiskAlarm restores it.
const defaultDiskFreeLimit = 50_000_000

// topology implements Topology from what a broker offers.
type topology struct {
	// urls are the AMQP URLs to try, best first.
	urls func() []string
	// mgmt are the management API clients to try, best first; nil when
	// there is no management API, for the reason noMgmt.
	mgmt   func() []mgmtClient
	noMgmt string
	// raiseNodes and clearNodes are the nodes on which to raise and clear
	// an alarm; nil when alarms cannot be set, for the reason noAlarm.
	raiseNodes func(op TopologyOp) []*Managed
	clearNodes func(op TopologyOp) []*Managed
	noAlarm    string
	// cancel cancels a queue's consumers; nil when it cannot be done, for
	// the reason noCancel.
	cancel   func(ctx context.Context, queue string) error
	noCancel string
}

func (t *topology) Supports(op TopologyOp) error {
	why := ""
	switch op {
	case OpDeleteQueue:
	case OpCloseConnections:
		if t.mgmt == nil {
			why = t.noMgmt
		}
	case OpCancelConsumers:
		if t.cancel == nil {
			why = t.noCancel
		}
	case OpMemoryAlarm, OpDiskAlarm:
		if t.raiseNodes == nil {
			why = t.noAlarm
		}
	default:
		return fmt.Errorf("topology fault %q: %w: unknown", op, ErrUnsupported)
	}
	if why != "" {
		return fmt.Errorf("topology fault %s: %w: %s", op, ErrUnsupported, why)
	}
	return nil
}

func (t *topology) DeleteQueue(ctx context.Context, queue string) (int, error) {
	var errs []error
	for _, u := range t.urls() {
		n, err := deleteQueue(ctx, u, queue)
		if err == nil || errors.Is(err, ErrNoQueue) {
			return n, err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return 0, fmt.Errorf("delete queue %q: %w", queue, errors.Join(errs...))
}

// deleteQueue deletes a queue over AMQP, after checking that it exists (a
// delete of a missing queue succeeds, which would hide a misspelt name).
func deleteQueue(ctx context.Context, url, queue string) (int, error) {
	conn, err := Dial(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	// The channel methods below take no context: closing the connection
	// ends them.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ch, err := conn.Channel()
	if err != nil {
		return 0, redact.Error(fmt.Errorf("open channel on %s: %w", redact.URL(url), err), url)
	}
	if _, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil); err != nil {
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
			return 0, fmt.Errorf("delete queue %q: %w", queue, ErrNoQueue)
		}
		return 0, redact.Error(fmt.Errorf("check queue %q on %s: %w", queue, redact.URL(url), err), url)
	}
	n, err := ch.QueueDelete(queue, false, false, false)
	if err != nil {
		return 0, redact.Error(fmt.Errorf("delete queue %q on %s: %w", queue, redact.URL(url), err), url)
	}
	return n, nil
}

func (t *topology) CloseConnections(ctx context.Context, except ...string) (int, error) {
	if err := t.Supports(OpCloseConnections); err != nil {
		return 0, err
	}
	var errs []error
	for _, c := range t.mgmt() {
		n, err := closeConnections(ctx, c, except)
		if err == nil {
			return n, nil
		}
		errs = append(errs, err)
		if n > 0 || ctx.Err() != nil {
			// Some are closed already: another node would not do better.
			return n, err
		}
	}
	return 0, errors.Join(errs...)
}

func (t *topology) CancelConsumers(ctx context.Context, queue string) error {
	if err := t.Supports(OpCancelConsumers); err != nil {
		return err
	}
	return t.cancel(ctx, queue)
}

func (t *topology) RaiseMemoryAlarm(ctx context.Context) error {
	return t.eachAlarmNode(ctx, OpMemoryAlarm, t.raiseNodes, (*Managed).Block)
}

func (t *topology) ClearMemoryAlarm(ctx context.Context) error {
	return t.eachAlarmNode(ctx, OpMemoryAlarm, t.clearNodes, (*Managed).Unblock)
}

func (t *topology) RaiseDiskAlarm(ctx context.Context) error {
	return t.eachAlarmNode(ctx, OpDiskAlarm, t.raiseNodes, (*Managed).raiseDiskAlarm)
}

func (t *topology) ClearDiskAlarm(ctx context.Context) error {
	return t.eachAlarmNode(ctx, OpDiskAlarm, t.clearNodes, (*Managed).clearDiskAlarm)
}

// eachAlarmNode applies f to the nodes picks returns, all at once.
func (t *topology) eachAlarmNode(ctx context.Context, op TopologyOp, picks func(TopologyOp) []*Managed, f func(*Managed, context.Context) error) error {
	if err := t.Supports(op); err != nil {
		return err
	}
	nodes := picks(op)
	if len(nodes) == 0 {
		return fmt.Errorf("%s: no node is running", op)
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, m := range nodes {
		wg.Go(func() { errs[i] = f(m, ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// raiseDiskAlarm sets the node's free disk limit 1 GB above the space free
// on its data directory's file system.
func (m *Managed) raiseDiskAlarm(ctx context.Context) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.info.Dir, &st); err != nil {
		return fmt.Errorf("raise disk alarm on %s: read free space: %w", m.info.Node, err)
	}
	limit := uint64(st.Bavail)*uint64(st.Bsize) + 1_000_000_000
	return m.rabbitmqctl(ctx, "set_disk_free_limit", strconv.FormatUint(limit, 10))
}

func (m *Managed) clearDiskAlarm(ctx context.Context) error {
	return m.rabbitmqctl(ctx, "set_disk_free_limit", strconv.Itoa(defaultDiskFreeLimit))
}

// Why a fault cannot be applied.
const (
	whyNoCancelSingle = "RabbitMQ sends basic.cancel without deleting the queue only when a classic queue's node goes down " +
		"while its consumers are connected to other nodes of a cluster; on a single node use delete_queue"
	whyNoCancelExternal = "bench cannot stop a node of an external broker; " + whyNoCancelSingle
	whyNoAlarmExternal  = "alarms are set with rabbitmqctl on the broker's own node, which bench does not run for an external broker"
)

// Topology returns the topology faults of the node. Closing connections
// needs ManagedConfig.Management.
func (m *Managed) Topology() Topology {
	self := func(TopologyOp) []*Managed { return []*Managed{m} }
	t := &topology{
		urls:       func() []string { return []string{m.URL()} },
		raiseNodes: self,
		clearNodes: self,
		noCancel:   whyNoCancelSingle,
	}
	if base := m.ManagementURL(); base != "" {
		u, _ := amqp.ParseURI(m.URL()) // built by newManaged: it parses
		c := mgmtClient{base: base, user: u.Username, pass: u.Password}
		t.mgmt = func() []mgmtClient { return []mgmtClient{c} }
	} else {
		t.noMgmt = "the node runs without the management plugin (ManagedConfig.Management)"
	}
	return t
}

// ExternalTopology returns the topology faults of a broker bench does not
// run: queues are deleted over AMQP; connections are closed through the
// management API at managementURL (e.g. http://host:15672, with the AMQP
// URL's credentials) when it is not ""; alarms and consumer cancellation are
// not supported.
func ExternalTopology(amqpURL, managementURL string) (Topology, error) {
	u, err := amqp.ParseURI(amqpURL)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("parse broker URL %s: %w", redact.URL(amqpURL), err), amqpURL)
	}
	t := &topology{
		urls:     func() []string { return []string{amqpURL} },
		noAlarm:  whyNoAlarmExternal,
		noCancel: whyNoCancelExternal,
		noMgmt:   "no management API URL was given for the external broker",
	}
	if managementURL != "" {
		c := mgmtClient{base: managementURL, user: u.Username, pass: u.Password}
		t.mgmt = func() []mgmtClient { return []mgmtClient{c} }
	}
	return t, nil
}

// Topology returns the cluster's topology faults. An alarm is raised on one
// node, the first that runs (one node's alarm blocks publishers on every
// node, as in production when one node runs short of memory or disk), and
// cleared where it was raised, or on every running node when this Cluster
// does not know where. CancelConsumers restarts the node a classic queue
// lives on; see CancelConsumers.
func (c *Cluster) Topology() Topology {
	return &topology{
		urls: func() []string {
			var urls []string
			for _, i := range c.runningNodes() {
				urls = append(urls, c.nodes[i-1].URL())
			}
			return urls
		},
		mgmt: func() []mgmtClient {
			var cs []mgmtClient
			for _, i := range c.runningNodes() {
				cs = append(cs, c.mgmt(c.nodes[i-1]))
			}
			return cs
		},
		raiseNodes: func(op TopologyOp) []*Managed {
			running := c.runningNodes()
			if len(running) == 0 {
				return nil
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.alarmed == nil {
				c.alarmed = map[TopologyOp][]int{}
			}
			if !slices.Contains(c.alarmed[op], running[0]) {
				c.alarmed[op] = append(c.alarmed[op], running[0])
			}
			return []*Managed{c.nodes[running[0]-1]}
		},
		clearNodes: func(op TopologyOp) []*Managed {
			c.mu.Lock()
			raised := c.alarmed[op]
			delete(c.alarmed, op)
			c.mu.Unlock()
			var ms []*Managed
			for _, i := range c.runningNodes() {
				if len(raised) == 0 || slices.Contains(raised, i) {
					ms = append(ms, c.nodes[i-1])
				}
			}
			return ms
		},
		cancel: c.CancelConsumers,
	}
}

// runningNodes lists the nodes whose VM runs, preferred first.
func (c *Cluster) runningNodes() []int {
	var out []int
	for _, i := range c.preferredNodes() {
		if c.nodes[i-1].PID() != 0 {
			out = append(out, i)
		}
	}
	return out
}

// CancelConsumers makes RabbitMQ send basic.cancel to the consumers of a
// classic queue by restarting the node the queue lives on: the consumers
// connected to other nodes lose the queue, their channels fail to consume
// from it again while its node is down, and cancel them. The queue and its
// persistent messages come back with the node; consumers connected to that
// node lose their connection instead. RabbitMQ sends basic.cancel to a
// quorum queue's consumers only when the queue is deleted (a leader change
// does not cancel them), so a quorum queue is ErrUnsupported.
func (c *Cluster) CancelConsumers(ctx context.Context, queue string) error {
	if len(c.nodes) < 2 {
		return fmt.Errorf("cancel consumers of %q: %w: %s", queue, ErrUnsupported, whyNoCancelSingle)
	}
	q, err := c.queueInfo(ctx, queue)
	if err != nil {
		return fmt.Errorf("cancel consumers: %w", err)
	}
	if q.Type != "classic" {
		return fmt.Errorf("cancel consumers of %q: %w: it is a %s queue; RabbitMQ cancels a quorum queue's consumers only when the queue is deleted (use delete_queue)", queue, ErrUnsupported, q.Type)
	}
	home, err := c.Leader(ctx, queue)
	if err != nil {
		return fmt.Errorf("cancel consumers of %q: %w", queue, err)
	}
	if err := c.Stop(ctx, home); err != nil {
		return fmt.Errorf("cancel consumers of %q: stop its node %d: %w", queue, home, err)
	}
	if err := c.Start(ctx, home); err != nil {
		return fmt.Errorf("cancel consumers of %q: start its node %d again: %w", queue, home, err)
	}
	return nil
}
