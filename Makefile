# Edge event collector and its research harness. `make help` lists targets.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/collector

.PHONY: help build run test check bench scenarios reproduce report gate clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## static collector binary in bin/ (CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./collector/cmd/collector

run: build ## run the collector on defaults (events.db here, :8080, log sink)
	./$(BIN) $(ARGS)

test: check ## the test command: gofmt, go vet, go test -race ./... (scenarios included)
	$(GO) test -race -count=1 ./...

check: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: ## go test benchmarks of the three write modes at 1, 16, 64 producers
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./collector/store/

scenarios: ## the testscript scenarios alone, verbose
	$(GO) test -count=1 -v ./scenarios/...

clean: ## remove build output
	rm -rf bin dist
