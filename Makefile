# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BACKENDS ?= tensorflow jax torch
# The CPU build of PyTorch, installed before the `torch` extra: an unpinned
# `torch` can resolve to a CUDA build of several GB. With your own build
# already in the venv, run `make test TORCH=` to keep it.
TORCH ?= torch==2.13.0

.PHONY: demo test lint install install-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[tensorflow,jax,bench]"

install-test: $(VENV)/bin/python
	@if [ -n "$(TORCH)" ]; then $(PY) -m pip install --quiet "$(TORCH)"; fi
	$(PY) -m pip install --quiet -e ".[tensorflow,jax,torch,test]"

demo: install
	$(PY) -m keras_embedlab demo

# Each backend runs in its own process (KERAS_BACKEND is read once); every
# backend runs even if an earlier one fails, and the target fails if any did.
test: install-test
	$(PY) -m ruff check .
	@failed=""; for b in $(BACKENDS); do \
	  echo "=== pytest with KERAS_BACKEND=$$b ==="; \
	  KERAS_BACKEND=$$b $(PY) -m pytest -q || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED backends:$$failed"; exit 1; fi; \
	echo "all backends passed: $(BACKENDS)"

lint: install-test
	$(PY) -m ruff check .
