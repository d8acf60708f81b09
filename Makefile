# asyncmachine: `make test` and `make demo` are the two commands; everything else is a step of them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest bench bench-quick demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check asyncmachine tests bench examples
	$(VENV)/bin/ruff format --check asyncmachine

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench.run --out build/bench/results.jsonl

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick --out build/bench/quick.jsonl

demo: $(STAMP)
	$(PY) examples/upload.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
