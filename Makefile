# Every target sets itself up: a virtual environment in .venv with the project and its dev tools.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8765

.PHONY: run test check system browser postgres clients format bench load chaos dist bundle sandbox clean

# uv installs in seconds what pip takes minutes for (the agent frameworks the tests drive are large).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,bench,postgresql]'
	touch $(STAMP)

## run: serve MCP over streamable HTTP at http://127.0.0.1:$(PORT)/mcp, writing to the embedded sandbox CRM
##      (loopback only, no bearer token needed: --no-auth)
run: $(STAMP)
	$(BIN)/opportunity-mcp --sandbox --transport http --port $(PORT) --no-auth

## test: lint, strict typing, then every test on every core (the interoperability tests fetch pinned npm
##       packages); the checks, the system packages and the LangChain environment are set up side by side
test: $(STAMP)
	$(MAKE) --no-print-directory -j3 check system clients
	$(BIN)/python -m pytest -n auto

## system: Debian's chromium (the board test) and postgresql (the journal tests start their own throwaway
##         server on loopback from it), in one apt-get when missing (needs root and apt)
system:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "The tests need$$missing: install your distribution's packages."; exit 1; fi; \
	fi
browser postgres: system

## clients: the LangChain client's own environment (.venv-langchain: its adapters pin mcp<2)
clients: $(STAMP)
	$(BIN)/python -m tests.clients.environment

## check: ruff (lint and format) and mypy --strict
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: opportunity-mcp against the floor server, in one run (not part of make test);
##        writes bench/results/latest.json and latest.md
bench: $(STAMP)
	$(BIN)/python -m bench.run

## load: two server processes, one PostgreSQL journal, one sandbox CRM, 32 clients, 2,000 creates with
##       overlapping idempotency keys; writes bench/results/load.json and load.md
load: $(STAMP) postgres
	$(BIN)/python -m bench.load

## chaos: two replicas, one PostgreSQL journal, faults, a SIGKILL and a database restart, agent-like
##        clients (loopback only, under a minute); writes bench/results/chaos.json and chaos.md
chaos: $(STAMP) postgres
	$(BIN)/python -m bench.chaos

## dist: the wheel and the sdist in dist/, checked with twine
dist: $(STAMP)
	rm -f dist/*.whl dist/*.tar.gz
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*.whl dist/*.tar.gz

## bundle: the MCP Bundle for Claude Desktop and other MCPB hosts, in dist/
bundle: $(STAMP)
	npx -y @anthropic-ai/mcpb@2.1.2 validate manifest.json
	mkdir -p dist
	npx -y @anthropic-ai/mcpb@2.1.2 pack . dist/opportunity-mcp.mcpb

## sandbox: the sandbox CRM alone on port 8766, for other processes to point their base URLs at
sandbox: $(STAMP)
	$(BIN)/opportunity-mcp sandbox --port 8766

clean:
	rm -rf $(VENV) .venv-langchain dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
