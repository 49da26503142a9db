# `make run` runs the agent on its embedded default config; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint venv bench clean

# Two stamps: the runtime alone (`make run`), and the runtime plus the test tools.
RUNTIME := $(VENV)/.runtime-installed
TOOLS   := $(VENV)/.test-installed

venv: $(TOOLS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TOOLS): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(RUNTIME)
	$(BIN)/vaktpost run

test: $(TOOLS)
	$(BIN)/pytest -q

lint: $(TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core agent checks alerting tests bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
