// Package brokertest finds a RabbitMQ broker for tests: $AMQP_URL, else the
// local broker at 127.0.0.1:5672, else a private managed node. A test that
// needs a broker fails (it never skips) when none can be had, so a missing
// install step shows up as a failure.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/redact"
)

// LocalURL is the broker tried when $AMQP_URL is unset.
const LocalURL = "amqp://guest:guest@127.0.0.1:5672/"

// localURL is LocalURL; tests of this package point it elsewhere.
var localURL = LocalURL

// shared is the state of one test binary.
var shared struct {
	mu      sync.Mutex
	inMain  bool            // Main runs the tests: a managed node may be shared
	url     string          // found so far
	managed *broker.Managed // started for the whole binary, stopped by Main

	cluster    *broker.Cluster // started by Cluster for the whole binary, closed by Main
	clusterErr error           // why it did not start: later calls fail at once
}

// Runner is what a TestMain hands to goleak.VerifyTestMain or runs itself;
// *testing.M is one.
type Runner interface{ Run() int }

type mainRunner struct{ m Runner }

// Main wraps a test binary's *testing.M so that a managed node started by URL
// is shared by all its tests and stopped when they end:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(brokertest.Main(m)) }
//
// Without Main, URL starts a node per test when it needs one.
func Main(m Runner) Runner { return mainRunner{m} }

func (r mainRunner) Run() int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := r.m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.managed != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := shared.managed.Close(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "brokertest: stop managed node: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.managed, shared.url = nil, ""
	}
	if shared.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := shared.cluster.Close(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "brokertest: close managed cluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.cluster = nil
	}
	shared.clusterErr = nil
	return code
}

// URL returns the AMQP URL of a broker for t: $AMQP_URL, else the local broker
// if it answers, else a managed rabbitmq-server node. It calls t.Fatal when
// there is none.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(broker.EnvURL); u != "" {
		return u
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.url != "" {
		return shared.url
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	_, localErr := broker.ServerVersion(pctx, localURL)
	pcancel()
	if localErr == nil {
		shared.url = localURL
		return localURL
	}
	if shared.managed != nil {
		// Started earlier in this binary (e.g. by a previous -count round).
		shared.url = shared.managed.URL()
		return shared.url
	}
	m, err := broker.StartManaged(ctx, broker.ManagedConfig{})
	if err != nil {
		t.Fatalf("no RabbitMQ broker for this test: $%s is unset, %s does not answer (%v), and a managed node did not start: %v\n"+
			"Install RabbitMQ (apt-get install -y rabbitmq-server) or set $%s.",
			broker.EnvURL, redact.URL(localURL), localErr, err, broker.EnvURL)
	}
	if shared.inMain {
		shared.managed, shared.url = m, m.URL()
		return m.URL()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("stop managed node: %v", err)
		}
	})
	return m.URL()
}

// Name returns a name for a queue or exchange that no other test, run or
// developer uses: prefix, a dash and 8 random hex digits, e.g. "retry-1a2b3c4d".
// It contains only [a-z0-9-] after the prefix, so it is valid as a segment of
// a task or event name when the prefix is. An empty prefix becomes "t".
func Name(t testing.TB, prefix string) string {
	t.Helper()
	if prefix == "" {
		prefix = "t"
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("make a unique name: %v", err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// clusterConfig is the cluster Cluster starts: three nodes, each in a network
// namespace of its own when the tests run as root (else on ports of
// 127.0.0.1), with room to boot on a busy machine.
var clusterConfig = broker.ClusterConfig{Nodes: 3, Node: broker.ManagedConfig{BootTimeout: 2 * time.Minute}}

// Cluster returns a private managed 3-node cluster for t. Under Main
// it is started once and shared by all the binary's tests, and closed when
// they end: a test that changes it (stops a node, partitions it) must undo
// that before it returns, with t.Cleanup so that a failure undoes it too.
// Without Main each call starts a cluster that t.Cleanup closes. It calls
// t.Fatal when no cluster can be started; once one failed to start in this
// binary, later calls fail at once with the same error.
func Cluster(t testing.TB) *broker.Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		return shared.cluster
	}
	if shared.clusterErr != nil {
		t.Fatalf("no managed cluster for this test (it failed to start earlier): %v", shared.clusterErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := broker.StartCluster(ctx, clusterConfig)
	if err != nil {
		if shared.inMain {
			shared.clusterErr = err
		}
		t.Fatalf("no managed cluster for this test: %v\nInstall RabbitMQ (make deps).", err)
	}
	t.Logf("brokertest: %d-node cluster on %s up in %v", c.Size(), c.Network(), c.BootTime().Round(100*time.Millisecond))
	if shared.inMain {
		shared.cluster = c
		return c
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close managed cluster: %v", err)
		}
	})
	return c
}
