package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestClusterOnPortsAndReaped boots a 2-node cluster on ports (the mode of
// a process that cannot make namespaces), then makes its registry entry name
// a dead owner, as a test binary killed by its timeout leaves it: reapStale
// must remove the cluster.
func TestClusterOnPortsAndReaped(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a 2-node rabbitmq-server cluster")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, ClusterConfig{Nodes: 2, Network: NetworkPorts, Node: ManagedConfig{BootTimeout: 2 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	if c.Network() != NetworkPorts || len(c.Info().Hosts) != 0 {
		t.Errorf("Network = %q, hosts %v", c.Network(), c.Info().Hosts)
	}
	ports := map[string]bool{}
	for _, u := range c.URLs() {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		if pu.Hostname() != "127.0.0.1" {
			t.Errorf("a node on ports listens on %s", pu.Host)
		}
		ports[pu.Port()] = true
	}
	if len(ports) != 2 {
		t.Errorf("nodes share a port: %v", c.URLs())
	}
	// StartCluster returned: the two nodes form one cluster.
	if err := c.healthy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Partition(ctx, [][]int{{1}, {2}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Partition on ports: %v, want ErrUnsupported", err)
	}
	if err := c.Reachable(ctx, 1, 2, time.Second); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Reachable on ports: %v, want ErrUnsupported", err)
	}

	// Its owner dies (a process that has exited: its pid is not alive).
	entry := filepath.Join(registryDir(), c.Info().ID+".json")
	b, err := os.ReadFile(entry)
	if err != nil {
		t.Fatalf("the cluster is not registered: %v", err)
	}
	var e registryEntry
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if e.OwnerPID != os.Getpid() {
		t.Errorf("registered owner %d, want this process %d", e.OwnerPID, os.Getpid())
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	e.OwnerPID = gone.Process.Pid
	if b, err = json.Marshal(e); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entry, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := reapStale(ctx, ManagedConfig{}); err != nil {
		t.Fatal(err)
	}
	for i, n := range c.Info().Nodes {
		if c.Running(i + 1) {
			t.Errorf("node %d still runs after the reap", i+1)
		}
		if _, err := os.Stat(n.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("node %d directory still there: %v", i+1, err)
		}
	}
	if _, err := os.Stat(c.Info().Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory still there: %v", err)
	}
	if _, err := os.Stat(entry); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("registry entry still there: %v", err)
	}
}

// TestClusterKilledWhileBootingIsReaped kills a process while its cluster
// boots (as a test binary's timeout does) and checks that reapStale removes
// what it left: running nodes, namespaces, directories.
func TestClusterKilledWhileBootingIsReaped(t *testing.T) {
	if os.Getenv("BENCH_BOOT_AND_WAIT") != "" {
		// The child: boot, and be killed meanwhile.
		StartCluster(context.Background(), ClusterConfig{Nodes: 2, Node: ManagedConfig{BootTimeout: 2 * time.Minute}})
		select {}
	}
	if testing.Short() {
		t.Skip("boots rabbitmq-server nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before, _ := filepath.Glob(filepath.Join(registryDir(), "*.json"))
	child := exec.Command(os.Args[0], "-test.run=^TestClusterKilledWhileBootingIsReaped$")
	child.Env = append(os.Environ(), "BENCH_BOOT_AND_WAIT=1")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })

	// Wait until its nodes' VMs run, while it still boots them (their
	// directories are not in the entry yet), then kill it.
	var e registryEntry
	eventuallyInternal(ctx, t, "the child's nodes boot", func() error {
		after, _ := filepath.Glob(filepath.Join(registryDir(), "*.json"))
		for _, f := range after {
			if slices.Contains(before, f) {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil || json.Unmarshal(b, &e) != nil || e.OwnerPID != child.Process.Pid {
				continue
			}
			for _, n := range e.Cluster.Nodes {
				if n.Dir != "" {
					t.Fatal("the cluster booted before the test could kill its owner")
				}
				if findBeam("RABBITMQ_NODENAME="+n.Node) == 0 {
					return errors.New("a node's VM is not up yet")
				}
			}
			if len(e.Cluster.Nodes) == 2 {
				return nil
			}
		}
		return errors.New("no entry yet")
	})
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if netnsSupported() == nil && len(e.Cluster.Hosts) != 2 {
		t.Fatalf("the child's cluster has %d namespaces, want 2", len(e.Cluster.Hosts))
	}
	for _, h := range e.Cluster.Hosts {
		if _, err := os.Stat(netnsPath(h.Netns)); err != nil {
			t.Fatalf("namespace %s of the killed child is not there to reap: %v", h.Netns, err)
		}
	}

	if err := reapStale(ctx, ManagedConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range e.Cluster.Nodes {
		if pid := findBeam("RABBITMQ_NODENAME=" + n.Node); pid != 0 {
			t.Errorf("node %s still runs (pid %d)", n.Node, pid)
		}
	}
	for _, h := range e.Cluster.Hosts {
		if _, err := os.Stat(netnsPath(h.Netns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still there: %v", h.Netns, err)
		}
	}
	if _, err := os.Stat(e.Cluster.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s still there: %v", e.Cluster.Dir, err)
	}
}

func eventuallyInternal(ctx context.Context, t *testing.T, what string, f func() error) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
