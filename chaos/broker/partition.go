package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A partition is made inside the nodes' namespaces, never on the host: in
// each namespace an nftables table drops every packet that arrives from a
// node of another group. Both sides drop, so no traffic crosses in either
// direction, and nothing answers: a node's connection attempts to the other
// side time out and its open distribution connections fall silent, as on a
// real network split. Clients on the host still reach every node.

// nftTable is the table bench owns in each namespace.
const nftTable = "bench"

// Partition splits the cluster into groups of nodes (1-based) that cannot
// reach each other; within a group traffic flows. Every node must be in
// exactly one group, and there must be at least two. A new partition replaces
// the one in place. It needs NetworkNetns and the nft command (nftables).
func (c *Cluster) Partition(ctx context.Context, groups [][]int) error {
	if err := c.canPartition(); err != nil {
		return err
	}
	if err := validateGroups(groups, len(c.nodes)); err != nil {
		return fmt.Errorf("partition %v: %w", groups, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	addrs := make([]string, len(c.info.Hosts))
	for i, h := range c.info.Hosts {
		addrs[i] = h.NodeAddr
	}
	err := c.eachNamespace(ctx, func(i int) string {
		return nftPartitionScript(blockedFor(i, groups, addrs))
	})
	if err != nil {
		// Half a partition is worse than none.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return errors.Join(fmt.Errorf("partition %v: %w", groups, err), c.heal(hctx))
	}
	c.groups = slices.Clone(groups)
	return nil
}

// Heal removes the partition: every node can reach every other again. What
// RabbitMQ then does depends on PartitionHandling (with the default, ignore,
// nodes that noticed the partition stay apart until restarted). Healing a
// whole cluster is a no-op.
func (c *Cluster) Heal(ctx context.Context) error {
	if err := c.canPartition(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.heal(ctx)
}

func (c *Cluster) heal(ctx context.Context) error {
	if err := c.eachNamespace(ctx, func(int) string { return nftHealScript() }); err != nil {
		return fmt.Errorf("heal partition: %w", err)
	}
	c.groups = nil
	return nil
}

// Partitioned returns the groups of the partition in place, or nil.
func (c *Cluster) Partitioned() [][]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.groups)
}

func (c *Cluster) canPartition() error {
	if c.info.Network != NetworkNetns {
		return fmt.Errorf("partition cluster on %s: %w: nodes share 127.0.0.1; partitions need network namespaces (run as root with iproute2)", c.info.Network, ErrUnsupported)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("partition cluster: find nft (apt-get install -y nftables, or make deps): %w", err)
	}
	return nil
}

// eachNamespace loads the nft script for node i into node i's namespace, in
// all namespaces at once.
func (c *Cluster) eachNamespace(ctx context.Context, script func(i int) string) error {
	errs := make([]error, len(c.info.Hosts))
	var wg sync.WaitGroup
	for i, h := range c.info.Hosts {
		wg.Go(func() { errs[i] = runInNetns(ctx, h.Netns, script(i+1), "nft", "-f", "-") })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// validateGroups checks that groups put each of nodes 1..n in exactly one
// group, in at least two non-empty groups.
func validateGroups(groups [][]int, n int) error {
	if len(groups) < 2 {
		return fmt.Errorf("want at least two groups, got %d", len(groups))
	}
	seen := make([]bool, n+1)
	var errs []error
	for gi, g := range groups {
		if len(g) == 0 {
			errs = append(errs, fmt.Errorf("group %d is empty", gi+1))
		}
		for _, i := range g {
			switch {
			case i < 1 || i > n:
				errs = append(errs, fmt.Errorf("node %d: the cluster has nodes 1 to %d", i, n))
			case seen[i]:
				errs = append(errs, fmt.Errorf("node %d is in more than one group", i))
			default:
				seen[i] = true
			}
		}
	}
	for i := 1; i <= n; i++ {
		if !seen[i] {
			errs = append(errs, fmt.Errorf("node %d is in no group", i))
		}
	}
	return errors.Join(errs...)
}

// blockedFor lists the addresses node i (1-based) must not hear from: those
// of the nodes outside its group.
func blockedFor(i int, groups [][]int, addrs []string) []string {
	var mine []int
	for _, g := range groups {
		if slices.Contains(g, i) {
			mine = g
		}
	}
	var out []string
	for j := 1; j <= len(addrs); j++ {
		if !slices.Contains(mine, j) {
			out = append(out, addrs[j-1])
		}
	}
	return out
}

// nftPartitionScript replaces bench's table with one that drops what arrives
// from blocked. Declaring the table before deleting it makes the delete
// succeed whether or not it existed; nft applies the file atomically.
func nftPartitionScript(blocked []string) string {
	var b strings.Builder
	b.WriteString(nftHealScript())
	fmt.Fprintf(&b, "table inet %s {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n", nftTable)
	if len(blocked) > 0 {
		fmt.Fprintf(&b, "\t\tip saddr { %s } counter drop\n", strings.Join(blocked, ", "))
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// nftHealScript removes bench's table, if there is one.
func nftHealScript() string {
	return fmt.Sprintf("table inet %s\ndelete table inet %s\n", nftTable, nftTable)
}

// Reachable reports whether node from can open a TCP connection to node to's
// distribution port, from inside node from's namespace (nil: it can). It
// needs NetworkNetns. A partition makes it fail after timeout.
func (c *Cluster) Reachable(ctx context.Context, from, to int, timeout time.Duration) error {
	if c.info.Network != NetworkNetns {
		return fmt.Errorf("reach node %d from node %d: %w: the cluster runs on ports", to, from, ErrUnsupported)
	}
	if _, err := c.Node(from); err != nil {
		return err
	}
	m, err := c.Node(to)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(m.info.host(), strconv.Itoa(m.info.DistPort))
	conn, err := dialFrom(dctx, c.info.Hosts[from-1].Netns, addr)
	if err != nil {
		return err
	}
	return conn.Close()
}
