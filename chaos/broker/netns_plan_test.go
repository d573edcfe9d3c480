//go:build linux

package broker

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestPlanHosts(t *testing.T) {
	hosts := planHosts("1a2b3c", 3, netip.MustParsePrefix("10.213.7.0/24"))
	want := []HostInfo{
		{Netns: "bench-1a2b3c-n1", Veth: "bq1a2b3ch1", HostAddr: "10.213.7.1", NodeAddr: "10.213.7.2", Subnet: "10.213.7.0/24"},
		{Netns: "bench-1a2b3c-n2", Veth: "bq1a2b3ch2", HostAddr: "10.213.7.5", NodeAddr: "10.213.7.6", Subnet: "10.213.7.0/24"},
		{Netns: "bench-1a2b3c-n3", Veth: "bq1a2b3ch3", HostAddr: "10.213.7.9", NodeAddr: "10.213.7.10", Subnet: "10.213.7.0/24"},
	}
	if !slices.Equal(hosts, want) {
		t.Errorf("planHosts = %+v\nwant %+v", hosts, want)
	}
	// The last node of a full /24 still fits, and interface names fit IFNAMSIZ.
	last := planHosts("ffffff", maxNetnsNodes, netip.MustParsePrefix("10.213.7.0/24"))[maxNetnsNodes-1]
	if last.NodeAddr != "10.213.7.254" || len(last.Veth) > 15 {
		t.Errorf("node %d: %+v", maxNetnsNodes, last)
	}
}

func TestSubnets24(t *testing.T) {
	got := subnets24(netip.MustParsePrefix("10.213.0.0/22"))
	want := []netip.Prefix{
		netip.MustParsePrefix("10.213.0.0/24"), netip.MustParsePrefix("10.213.1.0/24"),
		netip.MustParsePrefix("10.213.2.0/24"), netip.MustParsePrefix("10.213.3.0/24"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("subnets24(/22) = %v", got)
	}
	if n := len(subnets24(netip.MustParsePrefix("10.213.0.0/16"))); n != 256 {
		t.Errorf("a /16 holds %d /24s", n)
	}
	if got := subnets24(netip.MustParsePrefix("10.213.0.0/25")); got != nil {
		t.Errorf("subnets24(/25) = %v", got)
	}
}

func TestParseRoutes(t *testing.T) {
	out := `default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
10.213.5.0/24 via 192.0.2.9 dev eth0
unreachable 10.213.9.0/24
local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1
broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1
`
	got := parseRoutes(out)
	for _, want := range []string{"192.0.2.0/24", "10.213.5.0/24", "10.213.9.0/24", "127.0.0.1/32", "127.255.255.255/32"} {
		if !slices.Contains(got, netip.MustParsePrefix(want)) {
			t.Errorf("parseRoutes lacks %s: %v", want, got)
		}
	}
	if len(got) != 5 {
		t.Errorf("parseRoutes = %v, want 5 prefixes (no default)", got)
	}
	used := got
	if !overlapsAny(netip.MustParsePrefix("10.213.5.0/24"), used) || overlapsAny(netip.MustParsePrefix("10.213.6.0/24"), used) {
		t.Error("overlapsAny is wrong about 10.213.5.0/24 or 10.213.6.0/24")
	}
}

func TestChooseNetwork(t *testing.T) {
	noNetns := errors.New("creating network namespaces needs root")
	tests := []struct {
		want     string
		netnsErr error
		got      string
		err      string
	}{
		{NetworkAuto, nil, NetworkNetns, ""},
		{NetworkAuto, noNetns, NetworkPorts, ""},
		{NetworkPorts, nil, NetworkPorts, ""},
		{NetworkNetns, nil, NetworkNetns, ""},
		{NetworkNetns, noNetns, "", "needs root"},
	}
	for _, tt := range tests {
		got, err := chooseNetwork(tt.want, tt.netnsErr)
		if got != tt.got || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("chooseNetwork(%s, %v) = %q, %v; want %q, %q", tt.want, tt.netnsErr, got, err, tt.got, tt.err)
		}
	}
}
