package broker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Networks a cluster's nodes can be joined by.
const (
	// NetworkAuto picks NetworkNetns when this process can create network
	// namespaces (root, the ip command, Linux), else NetworkPorts.
	NetworkAuto = "auto"
	// NetworkNetns gives each node a network namespace of its own, joined
	// to the host by a veth pair: every node is its own host, with its own
	// address, and a partition cuts real traffic.
	NetworkNetns = "netns"
	// NetworkPorts runs every node on 127.0.0.1 on distinct ports. Nodes
	// cannot be partitioned from each other.
	NetworkPorts = "ports"
)

// KindCluster is the Kind of a managed cluster.
const KindCluster = "cluster"

// ErrUnsupported marks a fault this broker cannot apply (an external broker
// cannot raise an alarm, a cluster on ports cannot be partitioned). The
// message says why.
var ErrUnsupported = errors.New("not supported")

// ErrNoLeader is returned by Leader while a quorum queue has no leader that
// is up, e.g. between the leader's death and the next election.
var ErrNoLeader = errors.New("queue has no leader")

// ClusterConfig configures a managed cluster. The zero value is a 3-node
// cluster in namespaces when this process can make them.
type ClusterConfig struct {
	// Nodes is the number of nodes; 0 means 3.
	Nodes int
	// Network is NetworkAuto (also ""), NetworkNetns or NetworkPorts.
	Network string
	// Subnet is where namespace addresses come from: the cluster takes a /24
	// inside it that no address or route of this host overlaps. The zero
	// value means 10.213.0.0/16.
	Subnet netip.Prefix
	// NetTicktime is the Erlang distribution's net_ticktime, which bounds
	// how long a silent peer takes to be declared down (after a partition);
	// 0 means RabbitMQ's 60s. Whole seconds.
	NetTicktime time.Duration
	// PartitionHandling is RabbitMQ's cluster_partition_handling: "" means
	// its default (ignore), or "pause_minority", "autoheal".
	PartitionHandling string
	// Node configures every node: commands, base directory, user, timeouts,
	// Detached, ErlArgs. Management is on for cluster nodes regardless.
	Node ManagedConfig
}

// DefaultClusterSubnet is where a cluster's namespace addresses come from by
// default.
var defaultClusterSubnet = netip.MustParsePrefix("10.213.0.0/16")

func (c *ClusterConfig) setDefaults() {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Network == "" {
		c.Network = NetworkAuto
	}
	if !c.Subnet.IsValid() {
		c.Subnet = defaultClusterSubnet
	}
	c.Node.setDefaults()
	c.Node.Management = true
}

func (c *ClusterConfig) validate() error {
	var errs []error
	if c.Nodes < 1 {
		errs = append(errs, fmt.Errorf("nodes %d: a cluster needs at least one", c.Nodes))
	}
	switch c.Network {
	case NetworkAuto, NetworkNetns, NetworkPorts:
	default:
		errs = append(errs, fmt.Errorf("network %q: want %s, %s or %s", c.Network, NetworkAuto, NetworkNetns, NetworkPorts))
	}
	if c.Network != NetworkPorts && c.Nodes > maxNetnsNodes {
		errs = append(errs, fmt.Errorf("nodes %d: at most %d in namespaces", c.Nodes, maxNetnsNodes))
	}
	if !c.Subnet.Addr().Is4() || c.Subnet.Bits() > 24 {
		errs = append(errs, fmt.Errorf("subnet %s: want an IPv4 prefix of /24 or wider", c.Subnet))
	}
	if c.NetTicktime < 0 || c.NetTicktime%time.Second != 0 {
		errs = append(errs, fmt.Errorf("net ticktime %v: want whole seconds", c.NetTicktime))
	}
	switch c.PartitionHandling {
	case "", "ignore", "pause_minority", "autoheal":
	default:
		errs = append(errs, fmt.Errorf("partition handling %q: want ignore, pause_minority or autoheal", c.PartitionHandling))
	}
	if err := c.Node.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// HostInfo is a node's network namespace.
type HostInfo struct {
	Netns    string `json:"netns"`
	Veth     string `json:"veth"`      // the host's end of the veth pair
	HostAddr string `json:"host_addr"` // its address, on the node's /30
	NodeAddr string `json:"node_addr"` // the node's address in the namespace
	Subnet   string `json:"subnet"`    // the cluster's /24
}

// ClusterInfo identifies a cluster: what bench broker up saves so that bench
// broker down can remove it.
type ClusterInfo struct {
	ID      string     `json:"id"`
	Network string     `json:"network"`
	Dir     string     `json:"dir"` // holds the nodes' directories
	Nodes   []NodeInfo `json:"nodes"`
	Hosts   []HostInfo `json:"hosts,omitempty"` // NetworkNetns only
}

// Cluster is a private RabbitMQ cluster of N managed nodes, n1..nN, in fresh
// directories. It implements Broker (URL is node 1's); node i is controlled
// through Stop, Start, Kill and Node. Nodes are numbered from 1.
type Cluster struct {
	cfg      ClusterConfig
	info     ClusterInfo
	nodes    []*Managed
	bootTime time.Duration

	mu      sync.Mutex           // guards groups and alarmed
	groups  [][]int              // the partition in place; nil when whole
	alarmed map[TopologyOp][]int // nodes on which Topology raised an alarm

	closeOnce sync.Once
	closeErr  error
}

// Fixed ports of a node in its own namespace: every node is its own host.
const (
	netnsAMQPPort = 5672
	netnsDistPort = 25672
	netnsMgmtPort = 15672
)

// StartCluster starts a cluster and returns once every node runs and has
// joined node 1. The caller must Close it; on error nothing is left behind.
// Failures to provide it wrap ErrUnavailable.
//
// All nodes boot at once; nodes 2..N find node 1 through RabbitMQ's classic
// peer discovery and join it during their boot. One that booted before node
// 1 could take it stands alone; it is then joined the classic way
// (stop_app, join_cluster, start_app).
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configure cluster: %w", err)
	}
	network, err := chooseNetwork(cfg.Network, netnsSupported())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	server, ctl, err := resolveCommands(cfg.Node)
	if err != nil {
		return nil, err
	}
	// A leftover that cannot be removed does not stop a new cluster: the
	// new one takes other names and addresses.
	_ = reapStale(ctx, cfg.Node)

	start := time.Now()
	id, err := randomHex(3)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	pass, err := randomHex(16)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	c := &Cluster{cfg: cfg, info: ClusterInfo{ID: id, Network: network}}
	// The nodes' directories go in one directory of the cluster's.
	c.info.Dir = filepath.Join(cfg.Node.BaseDir, "bench-cluster-"+id)
	if err := os.Mkdir(c.info.Dir, 0o755); err != nil { // the nodes' user must get in
		return nil, fmt.Errorf("%w: create cluster directory: %w", ErrUnavailable, err)
	}
	c.cfg.Node.BaseDir = c.info.Dir
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
			defer cancel()
			err = fmt.Errorf("%w: start cluster: %w", ErrUnavailable, errors.Join(err, c.Close(cctx)))
		}
	}()
	// Registered before anything else is made, and again as it grows: if
	// this process dies while booting, the next StartCluster removes it all.
	if err := register(c.info); err != nil {
		return nil, err
	}
	if network == NetworkNetns {
		c.info.Hosts, err = setupHosts(ctx, id, cfg.Nodes, cfg.Subnet, func(planned []HostInfo) error {
			c.info.Hosts = planned
			return register(c.info)
		})
		if err != nil {
			return nil, err
		}
	}
	specs := c.nodeSpecs(pass)
	for _, s := range specs {
		c.info.Nodes = append(c.info.Nodes, NodeInfo{Node: s.name})
	}
	if err := register(c.info); err != nil {
		return nil, err
	}
	bootErr := c.bootNodes(ctx, server, ctl, specs)
	if err := register(c.info); err != nil || bootErr != nil {
		return nil, errors.Join(bootErr, err)
	}
	if err := c.form(ctx); err != nil {
		return nil, err
	}
	c.bootTime = time.Since(start)
	if cfg.Node.Detached {
		// It outlives this process on purpose: bench broker up's state
		// file, not the registry, keeps track of it.
		unregister(id)
	}
	return c, nil
}

// chooseNetwork resolves NetworkAuto; netnsErr says why namespaces cannot be
// made here (nil: they can).
func chooseNetwork(want string, netnsErr error) (string, error) {
	switch {
	case want == NetworkPorts:
		return NetworkPorts, nil
	case netnsErr == nil:
		return NetworkNetns, nil
	case want == NetworkNetns:
		return "", fmt.Errorf("cluster network %s: %w", NetworkNetns, netnsErr)
	default:
		return NetworkPorts, nil
	}
}

// nodeSpecs describes node i: n1 stands alone, the others look for n1.
func (c *Cluster) nodeSpecs(pass string) []nodeSpec {
	specs := make([]nodeSpec, c.cfg.Nodes)
	for i := range specs {
		s := nodeSpec{user: "bench", pass: pass}
		label := fmt.Sprintf("bench-%s-n%d", c.info.ID, i+1)
		if c.info.Network == NetworkNetns {
			h := c.info.Hosts[i]
			s.name, s.host, s.netns, s.longnames = label+"@"+h.NodeAddr, h.NodeAddr, h.Netns, true
			s.amqpPort, s.distPort, s.mgmtPort = netnsAMQPPort, netnsDistPort, netnsMgmtPort
		} else {
			s.name = label + "@localhost"
		}
		specs[i] = s
	}
	common := fmt.Sprintf("cluster_name = bench-%s\n", c.info.ID)
	if c.cfg.NetTicktime > 0 {
		common += fmt.Sprintf("net_ticktime = %d\n", int(c.cfg.NetTicktime/time.Second))
	}
	if c.cfg.PartitionHandling != "" {
		common += "cluster_partition_handling = " + c.cfg.PartitionHandling + "\n"
	}
	for i := range specs {
		specs[i].extraConf = common
		if i > 0 {
			specs[i].extraConf += "cluster_formation.peer_discovery_backend = classic_config\n" +
				"cluster_formation.classic_config.nodes.1 = " + specs[0].name + "\n"
		}
	}
	return specs
}

// bootNodes starts node 1, then the others at once, and waits until each
// accepts AMQP connections. Node 1 boots alone: a node that joins while node
// 1 is still migrating its schema (feature flags) fails its boot with
// schema_integrity_check_failed.
func (c *Cluster) bootNodes(ctx context.Context, server, ctl string, specs []nodeSpec) error {
	c.nodes = make([]*Managed, len(specs))
	errs := make([]error, len(specs))
	first, err := startNode(ctx, c.cfg.Node, server, ctl, specs[0])
	if err != nil {
		return fmt.Errorf("node 1: %w", err)
	}
	c.nodes[0] = first
	c.info.Nodes[0] = first.Info()
	var wg sync.WaitGroup
	for i, s := range specs {
		if i == 0 {
			continue
		}
		wg.Go(func() {
			m, err := startNode(ctx, c.cfg.Node, server, ctl, s)
			if err != nil {
				errs[i] = fmt.Errorf("node %d: %w", i+1, err)
				return
			}
			c.nodes[i] = m
		})
	}
	wg.Wait()
	for i, m := range c.nodes {
		if m != nil {
			c.info.Nodes[i] = m.Info()
		}
	}
	return errors.Join(errs...)
}

// form makes sure every node has joined node 1, joining stragglers by hand,
// and waits until node 1 sees them all running.
func (c *Cluster) form(ctx context.Context) error {
	members, err := c.waitMembers(ctx, c.nodes[0])
	if err != nil {
		return err
	}
	for i, m := range c.nodes[1:] {
		if slices.Contains(members, m.NodeName()) {
			continue
		}
		if err := c.join(ctx, m); err != nil {
			return fmt.Errorf("node %d: %w", i+2, err)
		}
	}
	return c.WaitHealthy(ctx)
}

// waitMembers returns the nodes the node's management API lists, waiting for
// the API to come up (it starts after the AMQP listener).
func (c *Cluster) waitMembers(ctx context.Context, m *Managed) ([]string, error) {
	bctx, cancel := context.WithTimeout(ctx, c.cfg.Node.BootTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ns, err := c.mgmt(m).nodes(bctx)
		if err == nil {
			names := make([]string, len(ns))
			for i, n := range ns {
				names[i] = n.Name
			}
			return names, nil
		}
		select {
		case <-bctx.Done():
			return nil, fmt.Errorf("wait for the management API of %s: %w (last error: %w)", m.NodeName(), bctx.Err(), err)
		case <-tick.C:
		}
	}
}

// join makes a node that stands alone join node 1.
func (c *Cluster) join(ctx context.Context, m *Managed) error {
	for _, args := range [][]string{{"stop_app"}, {"join_cluster", c.nodes[0].NodeName()}, {"start_app"}} {
		if err := m.rabbitmqctl(ctx, args...); err != nil {
			return fmt.Errorf("join %s: %w", c.nodes[0].NodeName(), err)
		}
	}
	return nil
}

// WaitHealthy waits until every node runs, node by node each sees all the
// others running, and none reports a partition. A node stopped or killed by
// this Cluster must be started first, or WaitHealthy waits until ctx ends.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.healthy(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for cluster %s to be whole: %w (last: %w)", c.info.ID, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	for i, m := range c.nodes {
		ns, err := c.mgmt(m).nodes(ctx)
		if err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		seen := map[string]bool{}
		for _, n := range ns {
			if len(n.Partitions) > 0 {
				return fmt.Errorf("node %d reports %s partitioned from %v", i+1, n.Name, n.Partitions)
			}
			seen[n.Name] = n.Running
		}
		for j, o := range c.nodes {
			if !seen[o.NodeName()] {
				return fmt.Errorf("node %d does not see node %d running", i+1, j+1)
			}
		}
	}
	return nil
}

// mgmt is a client of node m's management API.
func (c *Cluster) mgmt(m *Managed) mgmtClient {
	u, _ := amqp.ParseURI(m.URL()) // built by newManaged: it parses
	return mgmtClient{base: m.ManagementURL(), user: u.Username, pass: u.Password}
}

// URL implements Broker: node 1's AMQP URL. Clients that must survive node
// 1's loss use URLs.
func (c *Cluster) URL() string { return c.info.Nodes[0].URL }

// URLs are every node's AMQP URL, node 1 first.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.info.Nodes))
	for i, n := range c.info.Nodes {
		urls[i] = n.URL
	}
	return urls
}

// Kind implements Broker.
func (c *Cluster) Kind() string { return KindCluster }

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Network is NetworkNetns or NetworkPorts: how the nodes are joined.
func (c *Cluster) Network() string { return c.info.Network }

// BootTime is how long StartCluster took, namespaces and joins included.
func (c *Cluster) BootTime() time.Duration { return c.bootTime }

// Info describes the cluster, for saving and AttachCluster.
func (c *Cluster) Info() ClusterInfo { return c.info }

// Version implements Broker: the version of the first node that answers.
func (c *Cluster) Version(ctx context.Context) (string, error) {
	var errs []error
	for _, m := range c.nodes {
		v, err := m.Version(ctx)
		if err == nil {
			return v, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// Node returns node i (1-based): its Controller (Block and Unblock raise and
// clear a memory alarm on that node only), URL and name.
func (c *Cluster) Node(i int) (*Managed, error) {
	if i < 1 || i > len(c.nodes) {
		return nil, fmt.Errorf("node %d: the cluster has nodes 1 to %d", i, len(c.nodes))
	}
	if c.nodes[i-1] == nil {
		return nil, fmt.Errorf("node %d: it never started", i)
	}
	return c.nodes[i-1], nil
}

// Stop stops node i gracefully (rabbitmqctl stop); its data is kept.
func (c *Cluster) Stop(ctx context.Context, i int) error {
	m, err := c.Node(i)
	if err != nil {
		return err
	}
	return m.Stop(ctx)
}

// Start starts node i (stopped or killed) and returns when it accepts AMQP
// connections, which it does once it has synced with the running nodes.
func (c *Cluster) Start(ctx context.Context, i int) error {
	m, err := c.Node(i)
	if err != nil {
		return err
	}
	return m.Start(ctx)
}

// Kill SIGKILLs node i's Erlang VM, as a crash would.
func (c *Cluster) Kill(ctx context.Context, i int) error {
	m, err := c.Node(i)
	if err != nil {
		return err
	}
	return m.Kill(ctx)
}

// Running reports whether node i's VM runs.
func (c *Cluster) Running(i int) bool {
	m, err := c.Node(i)
	return err == nil && m.PID() != 0
}

// Leader returns the node (1-based) that leads the quorum queue, or, for a
// classic queue, the node it lives on. It asks the management API of a
// running node, one in the largest group first while the cluster is
// partitioned (a minority's view may be stale). It returns ErrNoLeader while
// a quorum queue's leader is not one of its online members (between a
// leader's death and the next election).
func (c *Cluster) Leader(ctx context.Context, queue string) (int, error) {
	q, err := c.queueInfo(ctx, queue)
	if err != nil {
		return 0, err
	}
	leader := q.Node
	if q.Type == "quorum" {
		leader = q.Leader
		if leader == "" || !slices.Contains(q.Online, leader) {
			return 0, fmt.Errorf("leader of queue %q: %w", queue, ErrNoLeader)
		}
	}
	names := make([]string, len(c.nodes))
	for i, m := range c.nodes {
		names[i] = m.NodeName()
	}
	i := nodeIndex(names, leader)
	if i == 0 {
		return 0, fmt.Errorf("leader of queue %q: %q is not a node of this cluster", queue, leader)
	}
	return i, nil
}

// queueInfo asks the running nodes, in order of preference, about a queue in
// the default virtual host.
func (c *Cluster) queueInfo(ctx context.Context, queue string) (mgmtQueue, error) {
	var errs []error
	for _, i := range c.preferredNodes() {
		m := c.nodes[i-1]
		if m.PID() == 0 {
			continue
		}
		q, err := c.mgmt(m).queue(ctx, "/", queue)
		if err == nil {
			return q, nil
		}
		if errors.Is(err, errMgmtNotFound) {
			return q, fmt.Errorf("queue %q: %w", queue, ErrNoQueue)
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return mgmtQueue{}, fmt.Errorf("queue %q: no node is running", queue)
	}
	return mgmtQueue{}, fmt.Errorf("queue %q: %w", queue, errors.Join(errs...))
}

// preferredNodes lists the nodes to ask: those of the largest partition group
// first, then the rest, each in order.
func (c *Cluster) preferredNodes() []int {
	c.mu.Lock()
	groups := c.groups
	c.mu.Unlock()
	var order []int
	if len(groups) > 0 {
		largest := slices.MaxFunc(groups, func(a, b []int) int { return len(a) - len(b) })
		order = slices.Sorted(slices.Values(largest))
	}
	for i := 1; i <= len(c.nodes); i++ {
		if !slices.Contains(order, i) {
			order = append(order, i)
		}
	}
	return order
}

// Close implements Broker: it kills every node (their data is thrown away,
// so a graceful stop buys nothing), removes the namespaces and the nodes'
// directories. Concurrent and repeated calls return the first call's result.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		errs := make([]error, len(c.info.Nodes))
		var wg sync.WaitGroup
		for i, n := range c.info.Nodes {
			var m *Managed
			if i < len(c.nodes) {
				m = c.nodes[i]
			}
			wg.Go(func() {
				if m != nil {
					errs[i] = m.close(ctx, false)
				} else {
					// Never started, or its boot was cut short.
					errs[i] = killNode(ctx, n.Node)
				}
			})
		}
		wg.Wait()
		errs = append(errs, teardownHosts(ctx, c.info.Hosts))
		if c.info.Dir != "" {
			if err := os.RemoveAll(c.info.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			c.closeErr = fmt.Errorf("close cluster %s: %w", c.info.ID, err)
			return
		}
		unregister(c.info.ID)
	})
	return c.closeErr
}

// AttachCluster returns a handle on a cluster started earlier, perhaps by
// another process (bench broker down). Closing it removes the cluster.
func AttachCluster(info ClusterInfo, cfg ClusterConfig) (*Cluster, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configure cluster: %w", err)
	}
	if info.ID == "" {
		return nil, errors.New("attach cluster: incomplete cluster info")
	}
	c := &Cluster{cfg: cfg, info: info}
	for i, n := range info.Nodes {
		if n.Dir == "" {
			// A boot cut short: Close kills it by name.
			c.nodes = append(c.nodes, nil)
			continue
		}
		m, err := Attach(n, cfg.Node)
		if err != nil {
			return nil, fmt.Errorf("attach cluster %s node %d: %w", info.ID, i+1, err)
		}
		c.nodes = append(c.nodes, m)
	}
	return c, nil
}
