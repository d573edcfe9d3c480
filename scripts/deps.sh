#!/usr/bin/env bash
# Installs what bench needs on a Debian machine with Go: rabbitmq-server (managed
# broker nodes and the tests), chromium (the report's browser test) and, when run
# as root, iproute2 and nftables: a managed cluster gives each node a network
# namespace (ip netns) and cuts partitions with nft inside those namespaces.
# Without root a cluster runs on ports of 127.0.0.1 and needs neither.
set -euo pipefail

missing=()
command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
if [[ $(id -u) -eq 0 ]]; then
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v nft >/dev/null 2>&1 || missing+=(nftables)
fi
if [[ "${BENCH_SKIP_BROWSER:-}" != 1 ]]; then
	command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "bench: missing ${missing[*]}; install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 3
fi
echo "bench: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
