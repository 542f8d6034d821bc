# Every target builds what it needs: a fresh clone only needs python3 (3.11+).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NODE_CLIENT := clients/node
NODE_DEPS := $(NODE_CLIENT)/node_modules/.package-lock.json

.PHONY: install tools go-client gen check-gen lint format test up clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cli,dev]'
	touch $@

# clients/node's npm packages (the TypeScript generator buf runs, gRPC for Node),
# exactly as its lockfile pins them; reinstalled only when the lockfile changes.
$(NODE_DEPS): $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund
	touch $@

# The platform's own tools, pinned, built from source with `go install` into
# .tools/bin (see README, "Tools"). Each is reinstalled only when its version here
# changes: the stamp .tools/installed/NAME@VERSION names the version in the bin.
TOOLS := .tools
TOOLS_BIN := $(TOOLS)/bin
# istioctl first: it is the longest build by far, so it starts first when make runs jobs in parallel.
GO_TOOLS := istioctl kustomize kubeconform grpcurl grpc-health-probe ghz \
	protoc-gen-go protoc-gen-go-grpc protoc-gen-openapiv2
# kustomize: a release tag (its main branch has replace directives); v5.8.3 needs Go 1.27.
GO_TOOL.kustomize := sigs.k8s.io/kustomize/kustomize/v5@v5.8.2
GO_TOOL.kubeconform := github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
# Istio's tags have no `v`: the module proxy serves 1.31.0 as a pseudo-version.
GO_TOOL.istioctl := istio.io/istio/istioctl/cmd/istioctl@1.31.0
GO_TOOL.grpcurl := github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
GO_TOOL.grpc-health-probe := github.com/grpc-ecosystem/grpc-health-probe@v0.4.63
GO_TOOL.ghz := github.com/bojand/ghz/cmd/ghz@v0.121.0
# buf's local plugins for gen/go (buf.gen.go.yaml) and the OpenAPI description.
GO_TOOL.protoc-gen-go := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GO_TOOL.protoc-gen-go-grpc := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
GO_TOOL.protoc-gen-openapiv2 := github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@v2.33.0
# Build flags. Where a tool's own speed does not matter (it runs for a moment),
# it is built without optimisation or inlining, without symbols and with no
# file paths: istioctl's cold build then takes 28 % less CPU (README, "Tools").
# ghz is a load generator and kubeconform runs many times: they stay optimised.
QUICK_BUILD := -trimpath '-gcflags=all=-N -l' '-ldflags=-s -w'
GO_FLAGS.kustomize := $(QUICK_BUILD)
GO_FLAGS.istioctl := -trimpath '-gcflags=all=-N -l' \
	'-ldflags=-s -w -X istio.io/istio/pkg/version.buildVersion=$(lastword $(subst @, ,$(GO_TOOL.istioctl)))'
GO_FLAGS.grpcurl := $(QUICK_BUILD)
GO_FLAGS.grpc-health-probe := $(QUICK_BUILD)
GO_FLAGS.protoc-gen-go := $(QUICK_BUILD)
GO_FLAGS.protoc-gen-go-grpc := $(QUICK_BUILD)
GO_FLAGS.protoc-gen-openapiv2 := $(QUICK_BUILD)
go_tool = $(TOOLS)/installed/$(1)@$(lastword $(subst @, ,$(GO_TOOL.$(1))))
GO_TOOL_STAMPS := $(foreach tool,$(GO_TOOLS),$(call go_tool,$(tool)))
# Kubernetes' schemas for kubeconform (offline), from the kubernetes-validate wheel.
KUBERNETES_SCHEMAS := $(TOOLS)/kubernetes-schemas/.written

$(TOOLS)/installed/%:
	GOBIN=$(abspath $(TOOLS_BIN)) tools/go_install.sh $(firstword $(subst @, ,$*)) \
		$(GO_TOOL.$(firstword $(subst @, ,$*))) $(GO_FLAGS.$(firstword $(subst @, ,$*)))
	rm -f $(TOOLS)/installed/$(firstword $(subst @, ,$*))@*
	mkdir -p $(@D) && touch $@

$(KUBERNETES_SCHEMAS): $(INSTALLED) tools/kubernetes_schemas.py shopmesh/istio/checks.py
	$(BIN)/python tools/kubernetes_schemas.py $(@D)
	touch $@

## tools: the Go tools in .tools/bin and the Kubernetes schemas kubeconform reads
tools: $(GO_TOOL_STAMPS) $(KUBERNETES_SCHEMAS)

# buf's local Go plugins (buf.gen.go.yaml, and buf.gen.yaml's OpenAPI generator), run by tools/codegen.py.
GO_PLUGINS := $(call go_tool,protoc-gen-go) $(call go_tool,protoc-gen-go-grpc) \
	$(call go_tool,protoc-gen-openapiv2)

## gen: regenerate gen/ (Python, TypeScript and Go stubs, descriptor set, OpenAPI), istio/ and envoy/examples/
gen: $(INSTALLED) $(NODE_DEPS) $(GO_PLUGINS)
	$(BIN)/buf format -w proto
	$(BIN)/python tools/codegen.py write
	$(BIN)/shopmesh generate

## check-gen: fail when the committed generated code, istio/ or envoy/examples/ is stale
check-gen: $(INSTALLED) $(NODE_DEPS) $(GO_PLUGINS)
	$(BIN)/python tools/codegen.py check
	$(BIN)/shopmesh generate --check

## lint: buf lint + format check on the contracts, ruff and the import layers on the Python, gofmt on the Go client
lint: $(INSTALLED)
	$(BIN)/buf lint
	$(BIN)/buf format -d --exit-code proto
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@unformatted=$$(gofmt -l clients/go); test -z "$$unformatted" || { echo "gofmt -w these: $$unformatted"; exit 1; }

## format: apply buf, ruff and gofmt formatting
format: $(INSTALLED)
	$(BIN)/buf format -w proto
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	gofmt -w clients/go

## up: the local mesh on 127.0.0.1 (2 replicas per service, Envoy sidecars, edge); Ctrl-C stops it
## (make up PORT=9090: the edge's port)
PORT ?= 8080
up: $(INSTALLED)
	$(BIN)/shopmesh up --port $(PORT)

## test: everything CI runs
# The Go tools cost minutes of CPU to build cold (README, "Tools"), and only the
# tests marked go_tools need them. So, once pip, npm, lint and check-gen are
# done (three jobs at once: they mostly wait on the network), the tools and the
# Go client's build compile at the lowest CPU priority while the other tests run,
# which then lose next to no CPU to them; the go_tools tests run once they are
# built. The build's output follows the first tests' (.tools/build.log).
test:
	$(MAKE) --jobs=3 --output-sync=target $(INSTALLED) $(NODE_DEPS) lint check-gen
	@mkdir -p $(TOOLS)
	nice -n 19 $(MAKE) tools go-client > $(TOOLS)/build.log 2>&1 & build=$$!; \
	$(BIN)/python -m pytest -m "not go_tools"; first=$$?; \
	wait $$build; built=$$?; cat $(TOOLS)/build.log; \
	if [ $$built -ne 0 ]; then echo "make tools failed"; exit $$built; fi; \
	$(BIN)/python -m pytest -m go_tools && exit $$first

## go-client: compile the Go client and its tests (go vet), as its tests in make test do
go-client:
	cd clients/go && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go vet ./...

# .tools/ stays: its builds change only with the versions pinned above.
clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache $(NODE_CLIENT)/node_modules $(NODE_CLIENT)/dist
