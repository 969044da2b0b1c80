PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test run lint bench demo clean

setup: $(BIN)/disfer

$(BIN)/disfer: requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first, so nothing later resolves torch to a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(BIN)/disfer

test: setup
	$(BIN)/python -m pytest -q

run: setup
	$(BIN)/python -m disfer.launch
	$(BIN)/streamlit run streamlit_app.py

lint:
	$(BIN)/ruff check .

bench: setup
	set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) .pytest_cache
