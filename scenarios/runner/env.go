package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/chaos/depsim"
	"github.com/benchmq/bench/chaos/proxy"
	"github.com/benchmq/bench/chaos/timeline"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/scenarios"
)

// env is the environment under test of one variant: the broker, the proxies
// that faults act on, and the simulated dependency.
type env struct {
	broker broker.Broker
	ctl    broker.Controller // nil unless the broker is managed
	// stats reads the broker's own queue counts and memory (the management
	// plugin: on every managed node, and on an external broker that has it);
	// nil: the runner derives unacked jobs from its ledger.
	stats *broker.Stats

	proxies     proxies
	workerProxy proxy.Target // workers → broker, when broker faults are scheduled
	genProxy    proxy.Target // load generator → broker, likewise
	depProxy    proxy.Target // workers → dependency, when dependency faults are scheduled
	dep         *depsim.Server
	deps        map[string]proxy.Target // workers.command → each of its named dependencies, always

	directURL string // the runner's own connection: no proxy
	workerURL string
	genURL    string
	depURL    string
	version   string

	// A cluster's (cluster.go): shared by the run's variants, never closed here.
	cluster     *broker.Cluster
	nodeProxies [][]timeline.ProxyTarget // per node: the workers' and the generator's proxy
	workerURLs  []string                 // every node, through its proxy when there is one
	genURLs     []string
	topology    broker.Topology // nil when the scenario has no topology fault
}

// needs reports which proxies the scenario's faults act on. Without faults the
// workers talk to the broker directly, so a proxy's cost never shows up in a
// plain load test.
func needs(sc *scenarios.Scenario) (brokerProxy, depProxy bool) {
	for _, f := range sc.Faults {
		switch {
		case f.Target == "broker" && f.Action == "":
			brokerProxy = true
		case f.Target == "dependency" && f.Name == "":
			depProxy = true
		}
	}
	return brokerProxy, depProxy
}

func upEnv(ctx context.Context, sc *scenarios.Scenario, flagURL string, cluster *broker.Cluster, log *slog.Logger) (_ *env, err error) {
	e := &env{cluster: cluster}
	defer func() {
		if err != nil {
			e.down(context.WithoutCancel(ctx), log)
		}
	}()
	var b broker.Broker = cluster
	if cluster == nil {
		b, err = broker.Choose(ctx, broker.ChooseOptions{FlagURL: flagURL, ScenarioURL: sc.Broker.URL, Managed: sc.Broker.Managed,
			ManagedConfig: broker.ManagedConfig{Management: true}})
		if err != nil {
			return nil, fmt.Errorf("provide broker: %w", err)
		}
	}
	e.broker = b
	if c, ok := b.(broker.Controller); ok {
		e.ctl = c
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	e.version, err = b.Version(vctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("read broker version: %w", err)
	}
	if err := sc.CheckBroker(e.ctl != nil || e.cluster != nil); err != nil {
		return nil, err
	}
	e.stats = brokerStats(ctx, b, log)
	e.directURL, e.workerURL, e.genURL = b.URL(), b.URL(), b.URL()
	if cluster != nil {
		e.workerURLs, e.genURLs = cluster.URLs(), cluster.URLs()
	}
	if e.topology, err = topologyOf(b); err != nil {
		return nil, err
	}
	if err := checkTopology(sc, e.topology, cluster); err != nil {
		return nil, err
	}

	needBroker, needDep := needs(sc)
	if needBroker || needDep || len(sc.Dependencies) > 0 {
		if sc.Chaos.ToxiproxyURL != "" {
			ext, err := proxy.NewExternal(sc.Chaos.ToxiproxyURL)
			if err != nil {
				return nil, fmt.Errorf("use toxiproxy at %s: %w", redact.URL(sc.Chaos.ToxiproxyURL), err)
			}
			e.proxies = &externalProxies{ext: ext, prefix: "bench-" + newRunID()[:8] + "-"}
		} else {
			e.proxies = embeddedProxies{proxy.New()}
		}
	}
	if needBroker && cluster != nil {
		if err := e.upClusterProxies(ctx); err != nil {
			return nil, err
		}
	} else if needBroker {
		u, err := url.Parse(b.URL())
		if err != nil {
			return nil, fmt.Errorf("parse broker url %s: %w", redact.URL(b.URL()), err)
		}
		upstream := u.Host
		if e.workerProxy, err = e.proxies.add(ctx, "broker-workers", upstream); err != nil {
			return nil, fmt.Errorf("start broker proxy: %w", err)
		}
		if e.genProxy, err = e.proxies.add(ctx, "broker-generator", upstream); err != nil {
			return nil, fmt.Errorf("start broker proxy: %w", err)
		}
		e.workerURL = withHost(u, e.workerProxy.Addr())
		e.genURL = withHost(u, e.genProxy.Addr())
	}
	// A named dependency is always behind its proxy: the worker is given the
	// proxy's address, so a fault can act on it whenever it is scheduled.
	e.deps = map[string]proxy.Target{}
	for _, d := range sc.Dependencies {
		if e.deps[d.Name], err = e.proxies.add(ctx, "dep-"+d.Name, d.Upstream); err != nil {
			return nil, fmt.Errorf("start the proxy of dependency %s (%s): %w", d.Name, d.Upstream, err)
		}
	}
	if sc.Job.DependencyCalls > 0 {
		e.dep, err = depsim.Start(ctx, depsim.Config{Latency: sc.Dependency.Latency, Jitter: sc.Dependency.Jitter, ErrorRate: sc.Dependency.ErrorRate, Seed: sc.Seed})
		if err != nil {
			return nil, fmt.Errorf("start dependency: %w", err)
		}
		e.depURL = e.dep.URL()
		if needDep {
			du, err := url.Parse(e.dep.URL())
			if err != nil {
				return nil, fmt.Errorf("parse dependency url: %w", err)
			}
			if e.depProxy, err = e.proxies.add(ctx, "dependency", du.Host); err != nil {
				return nil, fmt.Errorf("start dependency proxy: %w", err)
			}
			e.depURL = withHost(du, e.depProxy.Addr())
		}
	}
	return e, nil
}

// brokerStats returns the reader of the broker's own figures: a managed
// node's management plugin, or an external broker's if it answers at its
// host's default management port; nil otherwise.
func brokerStats(ctx context.Context, b broker.Broker, log *slog.Logger) *broker.Stats {
	if m, ok := b.(*broker.Managed); ok {
		return m.Stats()
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := broker.ProbeStats(pctx, b.URL(), "")
	if err != nil {
		log.Info("no management API at the broker: unacked jobs are derived from the ledger", "err", redact.Error(err, b.URL()))
		return nil
	}
	return s
}

func withHost(u *url.URL, host string) string {
	c := *u
	c.Host = host
	return c.String()
}

// down tears everything down; it is safe on a half-built env.
func (e *env) down(ctx context.Context, log *slog.Logger) {
	var errs []error
	if e.proxies != nil {
		errs = append(errs, e.proxies.close(ctx))
	}
	if e.dep != nil {
		errs = append(errs, e.dep.Close())
	}
	switch {
	case e.cluster != nil:
		// The run's (or the caller's) cluster outlives the variant: whole again.
		errs = append(errs, e.restoreCluster(ctx))
	case e.broker != nil:
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		errs = append(errs, e.broker.Close(cctx))
		cancel()
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn("tear down environment", "err", err)
	}
}

// proxies is where the run's Toxiproxy proxies live: embedded in this process,
// or an external toxiproxy-server (chaos.toxiproxy_url).
type proxies interface {
	add(ctx context.Context, name, upstream string) (proxy.Target, error)
	close(ctx context.Context) error
}

type embeddedProxies struct{ set *proxy.Set }

func (p embeddedProxies) add(_ context.Context, name, upstream string) (proxy.Target, error) {
	return p.set.Add(name, upstream)
}

func (p embeddedProxies) close(context.Context) error { return p.set.Close() }

type externalProxies struct {
	ext    *proxy.External
	prefix string // run-unique: the server may be shared
}

func (p *externalProxies) add(ctx context.Context, name, upstream string) (proxy.Target, error) {
	return p.ext.Add(ctx, p.prefix+name, "127.0.0.1:0", upstream)
}

func (p *externalProxies) close(ctx context.Context) error { return p.ext.Close(ctx) }
