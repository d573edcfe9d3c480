#!/usr/bin/env bash
# Installs what bench needs on a Debian machine with Go.
#   scripts/deps.sh run    rabbitmq-server only: what `make run` needs (managed broker nodes)
#   scripts/deps.sh test   rabbitmq-server and chromium (the report's browser test): `make test`
# As root it installs what is missing with apt-get; otherwise it prints the
# command and exits 3. BENCH_SKIP_BROWSER=1 leaves chromium out of `test`
# (the browser test then skips). As root, both modes also install iproute2 and
# nftables: a managed cluster gives each node a network namespace (ip netns)
# and cuts partitions with nft inside those namespaces. Without root a cluster
# runs on ports of 127.0.0.1 and needs neither.
set -euo pipefail

mode=${1:-test}
case "$mode" in
run | test) ;;
*)
	echo "usage: scripts/deps.sh run|test" >&2
	exit 2
	;;
esac

missing=()
command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
if [[ $(id -u) -eq 0 ]]; then
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v nft >/dev/null 2>&1 || missing+=(nftables)
fi
if [[ $mode == test && "${BENCH_SKIP_BROWSER:-}" != 1 ]]; then
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
