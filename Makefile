# Every target builds what it needs: a fresh clone only needs python3 (3.11+).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NODE_CLIENT := clients/node
NODE_DEPS := $(NODE_CLIENT)/node_modules/.package-lock.json

.PHONY: install gen check-gen lint format test up clean

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

# protoc-gen-openapiv2 (gen/openapi/), pinned and `go install`ed into .tools/bin
# with the machine's own Go; rebuilt when this Makefile changes (say, the version).
TOOLS_BIN := .tools/bin
OPENAPIV2 := github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@v2.33.0
$(TOOLS_BIN)/protoc-gen-openapiv2: Makefile tools/go_install.sh
	GOBIN=$(CURDIR)/$(TOOLS_BIN) tools/go_install.sh protoc-gen-openapiv2 $(OPENAPIV2)
	touch $@

## gen: regenerate gen/ (Python and TypeScript stubs, descriptor set, OpenAPI), istio/ and envoy/examples/
gen: $(INSTALLED) $(NODE_DEPS) $(TOOLS_BIN)/protoc-gen-openapiv2
	$(BIN)/buf format -w proto
	$(BIN)/python tools/codegen.py write
	$(BIN)/shopmesh generate

## check-gen: fail when the committed generated code, istio/ or envoy/examples/ is stale
check-gen: $(INSTALLED) $(NODE_DEPS) $(TOOLS_BIN)/protoc-gen-openapiv2 $(TOOLS_BIN)/protoc-gen-openapiv2
	$(BIN)/python tools/codegen.py check
	$(BIN)/shopmesh generate --check

## lint: buf lint + format check on the contracts, ruff and the import layers on the Python
lint: $(INSTALLED)
	$(BIN)/buf lint
	$(BIN)/buf format -d --exit-code proto
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## format: apply buf and ruff formatting
format: $(INSTALLED)
	$(BIN)/buf format -w proto
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## up: the local mesh on 127.0.0.1 (2 replicas per service, Envoy sidecars, edge); Ctrl-C stops it
## (make up PORT=9090: the edge's port)
PORT ?= 8080
up: $(INSTALLED)
	$(BIN)/shopmesh up --port $(PORT)

## test: everything CI runs
test: lint check-gen $(NODE_DEPS)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .tools build .pytest_cache .ruff_cache $(NODE_CLIENT)/node_modules $(NODE_CLIENT)/dist
