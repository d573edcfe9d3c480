package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/chaos/timeline"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/scenarios"
	"github.com/benchmq/bench/worker"
)

// EnvURLs is the environment variable that gives a worker process the other
// URLs of a cluster (space-separated), after $AMQP_URL's: it fails over to them.
const EnvURLs = "AMQP_URLS"

// clusterBootTimeout bounds a node's boot; a 3-node cluster takes tens of
// seconds on a busy machine.
const clusterBootTimeout = 2 * time.Minute

// clusterFor returns the managed cluster of a scenario with broker.nodes of 2
// or more (nil for any other): Options.Cluster, or the one this run started
// for its first variant, which its later variants reuse and Run closes.
func (r *Runner) clusterFor(ctx context.Context, sc *scenarios.Scenario) (*broker.Cluster, error) {
	if !sc.Broker.Cluster() {
		return nil, nil
	}
	c := r.opts.Cluster
	if c == nil {
		r.mu.Lock()
		c = r.cluster
		r.mu.Unlock()
	}
	if c == nil {
		started, err := broker.StartCluster(ctx, broker.ClusterConfig{Nodes: sc.Broker.Nodes, Node: broker.ManagedConfig{BootTimeout: clusterBootTimeout}})
		if err != nil {
			return nil, fmt.Errorf("start a %d-node cluster: %w", sc.Broker.Nodes, err)
		}
		r.log.Info("cluster up", "nodes", started.Size(), "network", started.Network(), "boot", started.BootTime().Round(100*time.Millisecond))
		r.mu.Lock()
		r.cluster = started
		r.mu.Unlock()
		c = started
	}
	if c.Size() != sc.Broker.Nodes {
		return nil, fmt.Errorf("the cluster has %d nodes, the scenario asks for %d (broker.nodes)", c.Size(), sc.Broker.Nodes)
	}
	return c, nil
}

// closeCluster closes the cluster Run started, if any.
func (r *Runner) closeCluster() {
	r.mu.Lock()
	c := r.cluster
	r.cluster = nil
	r.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		r.log.Warn("close the cluster", "err", err)
	}
}

// upClusterProxies puts a pair of proxies (workers, generator) in front of
// every node, and points the clients' URL lists at them.
func (e *env) upClusterProxies(ctx context.Context) error {
	urls := e.cluster.URLs()
	e.workerURLs, e.genURLs = make([]string, len(urls)), make([]string, len(urls))
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("parse node %d url %s: %w", i+1, redact.URL(raw), err)
		}
		wp, err := e.proxies.add(ctx, fmt.Sprintf("broker-workers-n%d", i+1), u.Host)
		if err != nil {
			return fmt.Errorf("start broker proxy of node %d: %w", i+1, err)
		}
		gp, err := e.proxies.add(ctx, fmt.Sprintf("broker-generator-n%d", i+1), u.Host)
		if err != nil {
			return fmt.Errorf("start broker proxy of node %d: %w", i+1, err)
		}
		e.nodeProxies = append(e.nodeProxies, []timeline.ProxyTarget{wp, gp})
		e.workerURLs[i], e.genURLs[i] = withHost(u, wp.Addr()), withHost(u, gp.Addr())
	}
	e.workerURL, e.genURL = e.workerURLs[0], e.genURLs[0]
	return nil
}

// directURLs are the URLs of the runner's own connection, best first.
func (e *env) directURLs() []string {
	if e.cluster != nil {
		return e.cluster.URLs()
	}
	return []string{e.directURL}
}

// workerEnv is the broker's part of a worker process's environment.
func (e *env) workerEnv() []string {
	env := []string{"AMQP_URL=" + e.workerURL}
	if len(e.workerURLs) > 1 {
		env = append(env, EnvURLs+"="+strings.Join(e.workerURLs[1:], " "))
	}
	return env
}

// restoreCluster makes the shared cluster whole again after a variant:
// healed, every node running, each seeing the others. The timeline undid its
// faults already; this catches what an error left behind.
func (e *env) restoreCluster(ctx context.Context) error {
	c := e.cluster
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var errs []error
	if c.Partitioned() != nil {
		errs = append(errs, c.Heal(ctx))
	}
	for i := 1; i <= c.Size(); i++ {
		if !c.Running(i) {
			errs = append(errs, c.Start(ctx, i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restore the cluster: %w", err)
	}
	return c.WaitHealthy(ctx)
}

// topologyOf returns the topology faults of a broker: a cluster's, a managed
// node's, or an external broker's (queues deleted over AMQP only).
func topologyOf(b broker.Broker) (broker.Topology, error) {
	if t, ok := b.(interface{ Topology() broker.Topology }); ok {
		return t.Topology(), nil
	}
	return broker.ExternalTopology(b.URL(), "")
}

// checkTopology reports the topology faults of sc this broker cannot apply,
// before anything runs.
func checkTopology(sc *scenarios.Scenario, t broker.Topology, cluster *broker.Cluster) error {
	var errs []error
	for i, f := range sc.Faults {
		if f.Target != fault.TargetBroker {
			continue
		}
		switch f.Action {
		case fault.ActionDeleteQueue, fault.ActionCloseConnections, fault.ActionCancelConsumers, fault.ActionMemoryAlarm, fault.ActionDiskAlarm:
			if err := t.Supports(broker.TopologyOp(f.Action)); err != nil {
				errs = append(errs, fmt.Errorf("fault %d: %w", i+1, err))
			}
		}
		if f.Action == fault.ActionCancelConsumers && cluster != nil && sc.Queue.Type == worker.QueueQuorum && (f.Queue == "" || f.Queue == fault.QueueJob) {
			errs = append(errs, fmt.Errorf("fault %d: cancel_consumers: %w: RabbitMQ cancels a quorum queue's consumers only when the queue is deleted: use queue.type classic, or delete_queue", i+1, broker.ErrUnsupported))
		}
		if f.Action == fault.ActionPartition && cluster != nil && cluster.Network() != broker.NetworkNetns {
			errs = append(errs, fmt.Errorf("fault %d: partition: %w: the cluster runs on ports of 127.0.0.1; partitions need network namespaces (run as root with iproute2 and nftables)", i+1, broker.ErrUnsupported))
		}
	}
	return errors.Join(errs...)
}

// clusterTarget is a cluster as the timeline takes it.
type clusterTarget struct{ c *broker.Cluster }

func (t clusterTarget) Size() int { return t.c.Size() }

func (t clusterTarget) Running(i int) bool { return t.c.Running(i) }

func (t clusterTarget) Node(i int) (timeline.BrokerTarget, error) {
	m, err := t.c.Node(i)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (t clusterTarget) NodeTopology(i int) (timeline.TopologyTarget, error) {
	m, err := t.c.Node(i)
	if err != nil {
		return nil, err
	}
	return m.Topology(), nil
}

func (t clusterTarget) Leader(ctx context.Context, queue string) (int, error) {
	return t.c.Leader(ctx, queue)
}

func (t clusterTarget) Partition(ctx context.Context, groups [][]int) error {
	return t.c.Partition(ctx, groups)
}

func (t clusterTarget) Heal(ctx context.Context) error { return t.c.Heal(ctx) }

// clusterTargets adds the cluster, the topology and the queues to the
// timeline's targets.
func (v *variantRun) clusterTargets(t *timeline.Targets) {
	e := v.env
	if e.topology != nil {
		t.Topology = e.topology
	}
	t.Queues = timeline.Queues{Job: v.queue, Retry: v.retryQueues, Dead: v.deadQueue}
	t.KeepConnections = []string{runnerConnName}
	rnd := rand.New(rand.NewPCG(uint64(v.r.seed), uint64(v.index)))
	t.Pick = func(n int) int { return rnd.IntN(n) }
	if e.cluster == nil {
		return
	}
	t.Cluster = clusterTarget{e.cluster}
	t.Broker = nil
	t.NodeProxies = e.nodeProxies
	if len(e.nodeProxies) > 0 {
		t.BrokerProxies = nil
		for _, ps := range e.nodeProxies {
			t.BrokerProxies = append(t.BrokerProxies, ps...)
		}
	}
}

// tail is urls without its first, which goes in a URL field of its own.
func tail(urls []string) []string {
	if len(urls) < 2 {
		return nil
	}
	return urls[1:]
}

// waitFaults waits until the fault timeline has run, for at most d.
func (v *variantRun) waitFaults(ctx context.Context, faults *sync.WaitGroup, d time.Duration) {
	if d <= 0 {
		return
	}
	done := make(chan struct{})
	go func() {
		faults.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}
