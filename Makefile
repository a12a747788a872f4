# Two entry points (see README): `make quickstart` runs the main job, `make test` runs the tests.
# Both create .venv and install what they need; torch is pinned to the local CPU build (constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/archsearch spaces
	@for space in nb201 darts chain; do \
		echo "== $$space: one sampled architecture, built and costed at 3x32x32"; \
		$(BIN)/archsearch sample --space $$space --seed 0 | $(BIN)/archsearch cost - --runs 3 || exit 1; \
	done
	@echo "== DARTS_V2 as published (36 channels, 20 cells)"
	$(BIN)/archsearch cost DARTS_V2 --runs 3

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
