# The two commands everything hangs on: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The demo needs the package and its cli extra only; the dev tools come with make test.
DEMO_STAMP := $(VENV)/.installed-cli

.PHONY: test lint types pytest demo bench soak clean format

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[cli]'
	touch $(DEMO_STAMP)

venv: $(STAMP)

## lint, types and tests; fails on any of them
test: $(STAMP)
	$(BIN)/ruff check oec_async tests benchmarks examples
	$(BIN)/ruff format --check oec_async tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check oec_async tests benchmarks examples
	$(BIN)/ruff format --check oec_async tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff check --fix oec_async tests benchmarks examples
	$(BIN)/ruff format oec_async tests benchmarks examples

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

## the main job, against the built-in simulator (a fresh clone installs the cli extra only)
demo: $(if $(wildcard $(STAMP)),$(STAMP),$(DEMO_STAMP))
	$(BIN)/python -m oec_async demo

## benchmarks against curl, wget, aria2c and the shell recipe; rewrites benchmarks/RESULTS.md
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

## the long chaos soak: 300+ downloads under random faults and kill -9; prints its seed
soak: $(STAMP)
	$(BIN)/python -m tests.soak --downloads 300 $(if $(SEED),--seed $(SEED),)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist
