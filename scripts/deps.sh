#!/usr/bin/env bash
# Installs what bench needs on a Debian machine with Go: rabbitmq-server (managed
# broker nodes and the tests) and chromium (the report's browser test).
set -euo pipefail

missing=()
command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
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
