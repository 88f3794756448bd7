# The two commands a new user types: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test bench clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/computehub-tui $(ARGS)

# Many tests wait on subprocesses, ptys and loopback sockets, so six workers fit two cores.
TEST_WORKERS ?= 6

# Bytecode is compiled once, before the workers start, and kept (even where PYTHONDONTWRITEBYTECODE is set):
# otherwise every worker and every CLI or daemon child the tests start compiles the package from source again.
test: $(STAMP_TEST)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q -j 0 computehub_tui tests > /dev/null
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: $(STAMP_TEST)
	$(BIN)/python -m bench

screenshots: $(STAMP_TEST)
	$(BIN)/python screenshots/make_screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
