package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsSupported says why this process cannot give nodes network namespaces,
// or nil when it can: it needs root and the ip command (iproute2).
func netnsSupported() error {
	if os.Geteuid() != 0 {
		return errors.New("creating network namespaces needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("find ip (apt-get install -y iproute2): %w", err)
	}
	return nil
}

// setupHosts creates one namespace per node, each joined to the host by a
// veth pair on its own /30 of a /24 that nothing on this host uses yet. The
// host forwards between the veths (forwarding is switched on for those
// interfaces only, never host-wide), so nodes reach each other through the
// host and a partition can cut that path inside the namespaces. On error
// nothing is left behind. planned learns the names and addresses before
// anything is created, so that a cleanup after a crash can find them.
func setupHosts(ctx context.Context, id string, nodes int, base netip.Prefix, planned func([]HostInfo) error) (_ []HostInfo, err error) {
	unlock, err := lockFile(filepath.Join(os.TempDir(), "bench-netns.lock"))
	if err != nil {
		return nil, err
	}
	// Held until the addresses are on the interfaces: another bench process
	// then sees them as taken.
	defer unlock()
	subnet, err := pickSubnet(ctx, base)
	if err != nil {
		return nil, err
	}
	hosts := planHosts(id, nodes, subnet)
	if err := planned(hosts); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, teardownHosts(context.WithoutCancel(ctx), hosts))
		}
	}()
	for _, h := range hosts {
		if err := setupHost(ctx, h, subnet); err != nil {
			return hosts, err
		}
	}
	return hosts, nil
}

// planHosts names the namespaces and interfaces of a cluster and gives node i
// (1-based) the /30 at 4(i-1) in subnet: the host side .1, the node .2.
func planHosts(id string, nodes int, subnet netip.Prefix) []HostInfo {
	hosts := make([]HostInfo, nodes)
	base := subnet.Addr().As4()
	for i := range hosts {
		a := base
		a[3] = byte(4*i + 1)
		h := netip.AddrFrom4(a)
		hosts[i] = HostInfo{
			Netns:    fmt.Sprintf("bench-%s-n%d", id, i+1),
			Veth:     fmt.Sprintf("bq%sh%d", id, i+1), // at most 15 bytes (IFNAMSIZ)
			HostAddr: h.String(),
			NodeAddr: h.Next().String(),
			Subnet:   subnet.String(),
		}
	}
	return hosts
}

// maxNetnsNodes is how many /30s a /24 holds.
const maxNetnsNodes = 64

func setupHost(ctx context.Context, h HostInfo, subnet netip.Prefix) error {
	steps := [][]string{
		{"netns", "add", h.Netns},
		// The node's end is created inside the namespace, where it is eth0.
		{"link", "add", h.Veth, "type", "veth", "peer", "name", "eth0", "netns", h.Netns},
		{"addr", "add", h.HostAddr + "/30", "dev", h.Veth},
		{"link", "set", h.Veth, "up"},
		{"-n", h.Netns, "addr", "add", h.NodeAddr + "/30", "dev", "eth0"},
		{"-n", h.Netns, "link", "set", "eth0", "up"},
		{"-n", h.Netns, "link", "set", "lo", "up"},
		// Only the cluster's /24 is routed: nothing else (DNS included)
		// is reachable, and a lookup fails at once instead of timing out.
		{"-n", h.Netns, "route", "add", subnet.String(), "via", h.HostAddr},
	}
	for _, args := range steps {
		if err := runIP(ctx, args...); err != nil {
			return fmt.Errorf("set up namespace %s: %w", h.Netns, err)
		}
	}
	// Packets that arrive on this veth may be forwarded (to another node's
	// veth). The host-wide switch (net.ipv4.ip_forward) stays as it is.
	fwd := filepath.Join("/proc/sys/net/ipv4/conf", h.Veth, "forwarding")
	if err := os.WriteFile(fwd, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("set up namespace %s: enable forwarding on %s: %w", h.Netns, h.Veth, err)
	}
	return nil
}

// teardownHosts kills whatever still runs in the namespaces (epmd, a node
// that survived), then removes the namespaces and their veths. Missing ones
// are fine: teardown is also the cleanup of a half-built cluster.
func teardownHosts(ctx context.Context, hosts []HostInfo) error {
	var errs []error
	for _, h := range hosts {
		if err := killNetnsProcs(ctx, h.Netns); err != nil {
			errs = append(errs, err)
		}
		if err := runIP(ctx, "netns", "del", h.Netns); err != nil && !isMissing(err) {
			errs = append(errs, err)
		}
		// Deleting the namespace destroys the pair; this is for a veth whose
		// namespace was never made.
		if err := runIP(ctx, "link", "del", h.Veth); err != nil && !isMissing(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isMissing(err error) bool {
	s := err.Error()
	return strings.Contains(s, "No such file") || strings.Contains(s, "Cannot find device") ||
		strings.Contains(s, "does not exist")
}

// killNetnsProcs SIGKILLs every process in the namespace and waits until
// they are gone. They are the cluster's own: its nodes and their epmd.
func killNetnsProcs(ctx context.Context, ns string) error {
	if _, err := os.Stat(netnsPath(ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pids, err := netnsPIDs(ctx, ns)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill pid %d in namespace %s: %w", pid, ns, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the processes of namespace %s to exit: %w", ns, ctx.Err())
		case <-tick.C:
		}
	}
}

// netnsPIDs lists the live processes in the namespace (ip netns pids).
func netnsPIDs(ctx context.Context, ns string) ([]int, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil, fmt.Errorf("list processes of namespace %s: %w", ns, err)
	}
	var pids []int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err == nil && pidAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func netnsPath(ns string) string { return filepath.Join("/run/netns", ns) }

func runIP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pickSubnet returns a /24 inside base that overlaps no address and no route
// of this host. The caller holds the allocation lock.
func pickSubnet(ctx context.Context, base netip.Prefix) (netip.Prefix, error) {
	used, err := usedPrefixes(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	cands := subnets24(base)
	if len(cands) == 0 {
		return netip.Prefix{}, fmt.Errorf("subnet %s holds no /24", base)
	}
	start := rand.IntN(len(cands))
	for k := range cands {
		c := cands[(start+k)%len(cands)]
		if !overlapsAny(c, used) {
			return c, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("every /24 of %s is in use on this host", base)
}

// subnets24 lists the /24s inside an IPv4 prefix of /24 or wider.
func subnets24(base netip.Prefix) []netip.Prefix {
	base = base.Masked()
	if !base.Addr().Is4() || base.Bits() > 24 {
		return nil
	}
	n := 1 << (24 - base.Bits())
	out := make([]netip.Prefix, 0, n)
	a := base.Addr().As4()
	start := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8
	for i := range n {
		v := start + uint32(i)<<8
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24))
	}
	return out
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if p.Overlaps(u) {
			return true
		}
	}
	return false
}

// usedPrefixes are the host's IPv4 addresses (as their networks) and routes,
// the default route excepted.
func usedPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	var used []netip.Prefix
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			used = append(used, p.Masked())
		}
	}
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	return append(used, parseRoutes(string(out))...), nil
}

// parseRoutes reads the destinations of `ip -4 route show` lines, e.g.
// "10.1.0.0/16 via 10.0.0.1 dev eth0" or "local 127.0.0.1 dev lo table local".
func parseRoutes(out string) []netip.Prefix {
	var ps []netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && routeTypes[f[0]] {
			f = f[1:]
		}
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		dst := f[0]
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil && p.Addr().Is4() {
			ps = append(ps, p.Masked())
		}
	}
	return ps
}

// routeTypes may precede a route's destination.
var routeTypes = map[string]bool{
	"unicast": true, "local": true, "broadcast": true, "multicast": true, "throw": true,
	"unreachable": true, "prohibit": true, "blackhole": true, "nat": true, "anycast": true,
}

// lockFile takes an exclusive flock on path, creating it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// dialFrom opens a TCP connection to addr from inside namespace ns, as a
// process on that "host" would. The socket is created in ns; once created it
// works from any thread.
func dialFrom(ctx context.Context, ns, addr string) (net.Conn, error) {
	target, err := os.Open(netnsPath(ns))
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer target.Close()
	// The switch is per OS thread: hold this one until it is switched back.
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	var d net.Dialer
	conn, dialErr := d.DialContext(ctx, "tcp", addr)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it ends with this goroutine instead of
		// running other goroutines in the wrong namespace.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("leave namespace %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	if dialErr != nil {
		return nil, fmt.Errorf("dial %s from namespace %s: %w", addr, ns, dialErr)
	}
	return conn, nil
}

// runInNetns runs a command inside namespace ns with stdin as its input.
func runInNetns(ctx context.Context, ns, stdin string, argv ...string) error {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s in namespace %s: %w: %s", strings.Join(argv, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}
