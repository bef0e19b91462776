# Two commands do everything: `make quickstart` and `make test`.
# Each creates (or reuses) the virtualenv in $(VENV) and installs the package first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast quickstart bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,demo]"
	touch $(STAMP)

test: $(STAMP)
	# two test processes, one thread each (the machine has 2 cores); files stay whole in one process
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -q -n 2 --dist loadfile

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests -q -m "not slow"

quickstart: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/vlbert quickstart --out runs/quickstart

# Benchmarks (docs/benchmarks.md); the retrieval part uses the model `make quickstart` trained, if any.
BENCH_JSON ?= bench.json
bench: $(STAMP)
	HF_HUB_OFFLINE=1 BENCH_JSON=$(BENCH_JSON) $(BIN)/python tools/bench.py

clean:
	rm -rf $(VENV) runs .pytest_cache
