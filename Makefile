# Edge event collector and its research harness. `make help` lists targets.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/collector

.PHONY: help build run test check bench cpu-ab scenarios dist fuzz torture soak powercut storage mcp-e2e reproduce report gate clean peer

help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's|$$(PLATFORMS)|$(PLATFORMS)|' | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## static collector binary in bin/ (CGO_ENABLED=0)
	@echo "building $(BIN) (cold, compiling SQLite's pure-Go port takes a few minutes)"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./collector/cmd/collector

run: build ## run the collector on defaults (events.db here, :8080, log sink)
	./$(BIN) $(ARGS)

test: check ## the test command: gofmt, go vet, go test -race ./... (scenarios included)
	@echo "go test -race ./...: builds the collector for the black-box tests and runs every package; each prints when it is done (cold: 10+ minutes)"
	$(GO) test -race -count=1 ./...
	@echo "the hot path without -race: its allocation budget (counts mean nothing under -race) and a short run of its benchmark"
	$(GO) test -count=1 -run 'AllocsPerSingleEventRequest' -bench 'BenchmarkEvents' -benchtime 300x ./collector/server/

check: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: ## go test benchmarks: the three write modes at 1, 16, 64 producers; the POST /events handler at 1 and 64
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./collector/store/
	$(GO) test -run '^$$' -bench 'BenchmarkEvents' -benchtime 3s -count 1 ./collector/server/

cpu-ab: build ## interleaved A/B of CPU per request under wrk: OLD=binary NEW=binary [ROUNDS=5 CONNS=64 DURATION=10s]
	bash scripts/cpu-per-request.sh $(OLD) $(or $(NEW),$(BIN))

scenarios: ## the testscript scenarios alone, verbose
	@echo "scenarios: building the collector, then every script in every write mode (a few minutes)"
	$(GO) test -count=1 -v ./scenarios/...

PLATFORMS := linux/amd64 linux/arm64 darwin/arm64

dist: ## static release binaries for $(PLATFORMS), version-stamped, with SHA256SUMS
	rm -rf dist && mkdir -p dist
	set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
	    -o dist/collector-$(VERSION)-$$os-$$arch ./collector/cmd/collector; \
	done
	cd dist && sha256sum collector-* > SHA256SUMS && cat SHA256SUMS

PEER_BIN := bin/otelcol-peer

# The peer is its own module (peers/otelcol): its OpenTelemetry dependencies
# stay out of the collector's go.mod. A cold build downloads ~490 MB of
# modules and fills ~600 MB of build cache (11 min on a loaded 2-core box).
peer: ## the OpenTelemetry Collector build that `bench peer` compares with, into bin/otelcol-peer
	@echo "building $(PEER_BIN) (cold: ~490 MB of modules and ~10 minutes; seconds once cached)"
	CGO_ENABLED=0 $(GO) -C peers/otelcol build -trimpath -ldflags '$(LDFLAGS)' -o $(CURDIR)/$(PEER_BIN) .

mcp-e2e: ## collector mcp against the MCP Inspector's CLI (needs npm and jq)
	bash scripts/mcp-e2e.sh

clean: ## remove build output
	rm -rf bin dist

# --- research harness (bench/): reproduce, report, gate -------------------
# make reproduce            full run of every experiment, then the report (~32 min on 2 cores)
# make reproduce QUICK=1    the same pipeline as a smoke run, a few minutes
# make reproduce SKIP=a,b   leave experiments out (e.g. SKIP=peer when time is short)
# BENCH_FLAGS passes flags to `bench run`/`bench gate`, e.g. BENCH_FLAGS=-allow-busy
#
# Where measurements go: a full run writes results/ and reports/ (they are
# published). A smoke run (QUICK=1) writes under SMOKE, outside the
# repository, and says where, so trying the pipeline leaves the clone
# clean. RESULTS= and REPORTS= choose for yourself.
BENCH_BIN   := bin/bench
QUICK       ?=
SKIP        ?=
BENCH_FLAGS ?=
SMOKE       ?= $(or $(TMPDIR),/tmp)/edgecollector-smoke
RESULTS     ?= $(if $(QUICK),$(SMOKE)/results,results)
REPORTS     ?= $(if $(QUICK),$(SMOKE)/reports,reports)

.PHONY: bench-bin
bench-bin:
	$(GO) build -o $(BENCH_BIN) ./bench/cmd/bench

# The peer experiment needs bin/otelcol-peer: built first unless SKIP names peer.
comma    := ,
PEER_DEP := $(if $(filter peer,$(subst $(comma), ,$(SKIP))),,peer)

reproduce: build bench-bin $(PEER_DEP) ## measure every experiment into results/ and regenerate reports/ (QUICK=1: a smoke run, outside the repository; SKIP=peer leaves the peer out)
	./$(BENCH_BIN) run $(if $(QUICK),-quick) $(if $(SKIP),-skip $(SKIP)) -collector $(BIN) -peer $(PEER_BIN) -results $(RESULTS) $(BENCH_FLAGS)
	./$(BENCH_BIN) report -results $(RESULTS) -out $(REPORTS)
	@echo "report: $(REPORTS)/README.md (raw results under $(RESULTS)/)"

report: bench-bin ## regenerate reports/ from the raw results under results/ (deterministic)
	./$(BENCH_BIN) report -results $(RESULTS) -out $(REPORTS)

gate: bench-bin ## quick interleaved run; fails when a mode ratio's 95% CI lies past bench/gates.txt
	./$(BENCH_BIN) gate $(BENCH_FLAGS)

# --- reliability: crash torture, sink outage soak, power cuts, fuzzing ------
# Each is a harness experiment: figures go to RESULTS/<machine>/<timestamp>/
# (torture.txt, soak.txt, fuzz.txt; with QUICK=1 under SMOKE, see above) and
# into the report's reliability part; a lost acknowledged event or a crasher
# fails the command.
FUZZTIME ?= $(if $(QUICK),10s,30s)

torture: build bench-bin ## crash torture: SIGKILL under load, restart, ledger; every mode (~1.5 min; QUICK=1: ~20 s)
	./$(BENCH_BIN) run $(if $(QUICK),-quick) -collector $(BIN) -results $(RESULTS) $(BENCH_FLAGS) torture

soak: build bench-bin ## sink outage soak: backlog to its cap, 503s, recovery, drain, ledger (~3.5 min; QUICK=1: ~50 s)
	./$(BENCH_BIN) run $(if $(QUICK),-quick) -collector $(BIN) -results $(RESULTS) $(BENCH_FLAGS) soak

# powercut and storage mount a faultfs (FUSE): they need root and /dev/fuse.
# They use bin/otelcol-peer when it is there (make peer) and leave its cells
# out when it is not.
powercut: build bench-bin ## power cuts on a FUSE filesystem that forgets what was not fsync'd; ledger, negative control, the peer (~4 min; QUICK=1: ~40 s)
	./$(BENCH_BIN) run $(if $(QUICK),-quick) -collector $(BIN) -peer $(PEER_BIN) -results $(RESULTS) $(BENCH_FLAGS) powercut

storage: build bench-bin ## the write modes at the fsync latency of each storage class, on a FUSE mount (~3 min; QUICK=1: ~40 s)
	./$(BENCH_BIN) run $(if $(QUICK),-quick) -collector $(BIN) -peer $(PEER_BIN) -results $(RESULTS) $(BENCH_FLAGS) storage

fuzz: bench-bin ## each fuzz target for FUZZTIME (30s; QUICK=1: 10s), figures recorded as the fuzz experiment
	./$(BENCH_BIN) run -fuzztime $(FUZZTIME) -results $(RESULTS) $(BENCH_FLAGS) fuzz
