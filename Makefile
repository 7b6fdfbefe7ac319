# Every target creates .venv on first use, with the Python found on PATH (3.10 or newer).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## serve: the built-in echo server on TCP port 7777 (ARGS="..." passes CLI options)
serve: $(STAMP)
	$(BIN)/trioserve --tcp 127.0.0.1:7777 $(ARGS)

## test: linters, type checks, then the whole test suite
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

## bench: every benchmark comparison; writes benchmarks/results/ (BENCH_QUICK=1: a smoke run)
bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
		echo "wrk is missing: installing it with apt-get"; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && $$sudo apt-get install -y wrk; \
	}
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
