// Package proxy runs an embedded Toxiproxy: TCP proxies on 127.0.0.1 between
// the processes under test and what they talk to (the broker, the simulated
// dependency), with toxics that add latency, cut bandwidth, reset or blackhole
// connections, and a switch that takes a proxy down.
//
// Toxiproxy decides per connection, when the connection is opened or when a
// toxic is added, whether a toxic with a toxicity below 1 applies to it.
package proxy
