#!/usr/bin/env bash
# Installs what bench needs on a Debian machine with Go.
#   scripts/deps.sh run    rabbitmq-server only: what `make run` needs (managed broker nodes)
#   scripts/deps.sh node   rabbitmq-server, nodejs and npm, and the npm packages of
#                          examples/node-worker (npm ci): `make example-node`
#   scripts/deps.sh test   all of the above and chromium (the report's browser test): `make test`
# As root it installs what is missing with apt-get; otherwise it prints the
# command and exits 3. BENCH_SKIP_BROWSER=1 leaves chromium out of `test`
# (the browser test then skips); BENCH_SKIP_NODE=1 leaves node out (the Node
# example's test then skips). As root, every mode also installs iproute2 and
# nftables: a managed cluster gives each node a network namespace (ip netns)
# and cuts partitions with nft inside those namespaces. Without root a cluster
# runs on ports of 127.0.0.1 and needs neither.
set -euo pipefail

mode=${1:-test}
case "$mode" in
run | node | test) ;;
*)
	echo "usage: scripts/deps.sh run|node|test" >&2
	exit 2
	;;
esac

want_node=false
if [[ $mode == node || ($mode == test && "${BENCH_SKIP_NODE:-}" != 1) ]]; then
	want_node=true
fi

missing=()
command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
if [[ $(id -u) -eq 0 ]]; then
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v nft >/dev/null 2>&1 || missing+=(nftables)
fi
if [[ $mode == test && "${BENCH_SKIP_BROWSER:-}" != 1 ]]; then
	command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
if $want_node; then
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "bench: missing ${missing[*]}; install them with:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
		exit 3
	fi
	echo "bench: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Node example's packages, as its lock file pins them. A copy of the lock
# installed is kept in node_modules, so an unchanged one is not reinstalled.
if $want_node; then
	here=.
	[[ ${BASH_SOURCE[0]} == */* ]] && here=${BASH_SOURCE[0]%/*}
	example=$here/../examples/node-worker
	stamp=$example/node_modules/.bench-installed-lock.json
	if [[ ! -f $stamp || "$(<"$example/package-lock.json")" != "$(<"$stamp")" ]]; then
		echo "bench: npm ci in examples/node-worker" >&2
		(cd "$example" && npm ci --no-audit --no-fund --loglevel=error)
		if [[ -d $example/node_modules ]]; then
			echo "$(<"$example/package-lock.json")" >"$stamp"
		fi
	fi
fi
