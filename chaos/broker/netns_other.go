//go:build unix && !linux

package broker

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// Network namespaces are Linux's: elsewhere a cluster runs on ports.

const maxNetnsNodes = 64

func netnsSupported() error { return errors.New("network namespaces need Linux") }

func setupHosts(context.Context, string, int, netip.Prefix, func([]HostInfo) error) ([]HostInfo, error) {
	return nil, netnsSupported()
}

func teardownHosts(context.Context, []HostInfo) error { return nil }

func dialFrom(context.Context, string, string) (net.Conn, error) { return nil, netnsSupported() }

func runInNetns(context.Context, string, string, ...string) error { return netnsSupported() }
