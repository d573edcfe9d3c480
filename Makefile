# bench — see README.md. `make run` and `make test` install what they need (make deps).
GO        ?= go
BIN       := bin/bench
SCENARIO  ?= scenarios/spike.yaml
RUN_FLAGS ?=
PERF_FLAGS ?=
TEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: all build test vet unit scenario-test gate run bench deps deps-run deps-node assets screenshot clean example-node example-orders

all: build

build:
	$(GO) build -o $(BIN) ./cmd/bench

# `make run` needs a RabbitMQ install only; the tests also need chromium (the
# report's browser test).
deps:
	@scripts/deps.sh test

deps-run:
	@scripts/deps.sh run

deps-node:
	@scripts/deps.sh node

vet:
	$(GO) vet ./...

unit:
	$(GO) test $(TEST_FLAGS) ./...

# The CI run of the main scenario: fails on a failed gate (exit 1) or anything worse. Its gates are
# absolute (lost == 0, bounded memory); it is not compared with a baseline, since a spike's latency
# and drain are the machine's throughput of the moment (that comparison is `make gate`).
scenario-test: build
	$(BIN) run scenarios/spike.yaml --out out/ci-spike

test: deps vet unit scenario-test

# The regression gate for worker changes (docs/results.md): scenarios/ci.yaml five times against its
# committed baseline, which was recorded on one machine: record your own on another (see the docs).
# Against the machine's broker (a private node per run would add 5-15 s each), under names of its own.
GATE_BROKER ?= --amqp-url amqp://guest:guest@127.0.0.1:5672/
gate: build
	$(BIN) run scenarios/ci.yaml --repeat 5 --out out/ci --namespace auto $(GATE_BROKER)

run: deps-run build
	$(BIN) run $(SCENARIO) $(RUN_FLAGS)

# The examples of "Measure your own worker" (README): real workers under bench.
# make test runs both (examples/examples_test.go); these run them by hand.
# A Node.js worker on amqplib, black-box:
example-node: deps-node build
	$(BIN) run scenarios/examples/node-worker.yaml $(RUN_FLAGS)

# The orders service on the runtime, white-box, with its payments service
# (started here, at PAYMENTS_ADDR, and stopped after the run):
PAYMENTS_ADDR ?= 127.0.0.1:8081
example-orders: deps-run build
	$(GO) build -o bin/orders-worker ./examples/orders/cmd/orders-worker
	$(GO) build -o bin/payments ./examples/orders/cmd/payments
	bin/payments -addr $(PAYMENTS_ADDR) & pid=$$!; sleep 0.5; kill -0 $$pid || exit 3; \
	$(BIN) run scenarios/examples/orders.yaml --set dependencies.0.upstream=$(PAYMENTS_ADDR) $(RUN_FLAGS); \
	code=$$?; kill $$pid; exit $$code

# Benchmarks: the Go hot-path benchmarks, then the side-by-side run of BENCHMARKS.md
# (raw amqp091-go vs the runtime vs watermill-amqp, publisher, spike memory, ledger)
# against a private one-scheduler node. Another broker:
# make bench PERF_BROKER="--amqp-url amqp://..."; more flags: PERF_FLAGS="--repeat 9".
PERF_BROKER ?= --managed
bench: deps-run build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	cd internal/perf/watermillpeer && $(GO) build -o ../../../bin/watermillpeer .
	mkdir -p out
	$(BIN) perf $(PERF_BROKER) --peer bin/watermillpeer --json out/perf.json $(PERF_FLAGS)

# Refresh the vendored charting library of report.html from the npm registry:
# make assets [UPLOT_VERSION=latest]
UPLOT_VERSION ?= $(word 2,$(shell cat report/assets/VERSION))
assets:
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent "uplot@$(UPLOT_VERSION)" >/dev/null && tar xzf uplot-*.tgz); \
	cp "$$tmp/package/dist/uPlot.iife.min.js" "$$tmp/package/dist/uPlot.min.css" "$$tmp/package/LICENSE" report/assets/; \
	echo "uplot $$(node -p 'require(process.argv[1]).version' "$$tmp/package/package.json")" > report/assets/VERSION

# A screenshot of a real report for the README.
screenshot: deps build
	$(BIN) run scenarios/spike.yaml --out out/screenshot
	$(BIN) report out/screenshot/result.json --screenshot docs/report.png --width 1280
	$(BIN) run scenarios/capacity.yaml --out out/screenshot-capacity
	$(BIN) report out/screenshot-capacity/result.json --screenshot docs/capacity.png --screenshot-of '#capacity' --width 1280

clean:
	rm -rf bin out
