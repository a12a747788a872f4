# Two entry points (see README): `make quickstart` runs the main job, `make test` runs the tests.
# Both create .venv and install what they need; torch is pinned to the local CPU build (constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test lint docs clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/python -m archsearch.nn.native
	touch $(STAMP)

# The main job: a real search on scikit-learn's embedded digits (regularized evolution over NAS-Bench-201 cells,
# each trained for 3 epochs), then the winner retrained beside the hand-designed baseline at equal budget.
quickstart: $(STAMP)
	rm -rf runs/quickstart
	$(BIN)/archsearch search --space nb201 --strategy evolution --strategy-option population_size=6 \
		--dataset digits --epochs 3 --batch-size 64 --channels 8 --cells-per-stage 1 --trials 14 \
		--out runs/quickstart --retrain --retrain-epochs 8 --progress

# One test process per core (pytest-xdist), each torch on one thread (tests/conftest.py: it also keeps the tests that
# share files in one process): the suite's small networks gain nothing from a second thread, and two multi-threaded
# torch processes on one core spin-wait each other.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

# The API reference from the docstrings (MkDocs + mkdocstrings), into site/; offline.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
