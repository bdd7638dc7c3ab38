# cascade_batch — one command each. Every target creates the virtualenv when it is missing.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'  # dev includes the ray extra: its tests run in CI
	touch $(STAMP)

# The zero-setup demo: the sample queries through the three tiers of the built-in simulator.
demo: install
	rm -f samples/out.jsonl
	$(VENV)/bin/cascade-batch run samples/queries.jsonl -o samples/out.jsonl --simulate --summary samples/summary.json
	@echo "results: samples/out.jsonl   summary: samples/summary.json"

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check cascade_batch tests
	$(VENV)/bin/ruff format --check cascade_batch tests
	$(VENV)/bin/mypy

# Benchmarks (not part of `make test`): each prints a table and writes bench/results/NAME.json.
# The memory benchmark's 1M-line run takes about half an hour on 2 cores.
bench: install
	$(PY) bench/startup.py
	$(PY) bench/overhead.py
	$(PY) bench/latency.py
	$(PY) bench/saturation.py
	$(PY) bench/dedup.py
	$(PY) bench/ray_engine.py
	$(PY) bench/memory.py

clean:
	rm -rf $(VENV) build *.egg-info samples/out.jsonl samples/summary.json
