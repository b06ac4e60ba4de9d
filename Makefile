# agentid — make targets. `make help` lists them.

GO ?= go
GOLANGCI_LINT_VERSION := v2.15.0
BIN := $(CURDIR)/bin
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/agentid/agentid/internal/buildinfo.Version=$(VERSION)

# The race detector needs cgo and a C compiler; on a machine with only Go
# the tests run without it (and say so).
RACE := $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$($(GO) env CC)" >/dev/null 2>&1 && echo -race)

.DEFAULT_GOAL := help
.PHONY: help build test check fmt vet lint bench bench-tokens bench-svids fuzz clean

help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/agentid.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/agentid ./cmd/agentid

test: ## Run every test (with -race when cgo is available). Set AGENTID_TEST_POSTGRES_DSN to include PostgreSQL.
	@[ -n "$(RACE)" ] || echo "note: no C compiler or cgo disabled: running tests without -race"
	@[ -n "$$AGENTID_TEST_POSTGRES_DSN" ] || echo "note: AGENTID_TEST_POSTGRES_DSN is not set: the PostgreSQL conformance and tamper tests are skipped (SQLite runs them all)"
	$(GO) test $(RACE) -count=1 -timeout 20m ./...

check: fmt vet lint test ## gofmt, go vet, golangci-lint (pinned), then test.

fmt: ## Fail if any file is not gofmt-formatted.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet.
	$(GO) vet ./...

lint: $(GOLANGCI_LINT) ## golangci-lint at the pinned version with .golangci.yml.
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@

bench: ## Audit benchmarks (durable appends with 1 and 32 writers, verify); see docs/benchmarks.md.
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 5 ./internal/audit/

bench-tokens: build ## Token issuance vs the machine's ceiling (32 clients, 3 runs of 10s; Linux); see docs/benchmarks.md. BENCH_FLAGS adds flags.
	$(BIN)/agentid bench tokens --runs 3 $(BENCH_FLAGS)

bench-svids: ## SVID minting: X.509-SVID vs x509.CreateCertificate in the same run, JWT-SVID; see docs/benchmarks.md.
	$(GO) test -run '^$$' -bench 'X509SVID|JWTSVID' -benchtime 2s -count 5 ./internal/credential/

fuzz: ## Run every fuzz target for FUZZTIME each (default 20s).
	@$(GO) list -f '{{.Dir}} {{.ImportPath}}' ./... | while read dir pkg; do \
	  for f in $$(cd $$dir && $(GO) test -list '^Fuzz' . 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$pkg || exit 1; \
	  done; done

clean: ## Remove build output.
	rm -rf $(BIN)
