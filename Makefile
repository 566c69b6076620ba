# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BACKENDS ?= tensorflow jax torch
# The CPU build of PyTorch, installed before the `torch` extra: an unpinned
# `torch` can resolve to a CUDA build of several GB. With your own build
# already in the venv, run `make test TORCH=` to keep it.
TORCH ?= torch==2.13.0

# The floor versions stated in pyproject.toml, proven by `make test-floor`:
# a venv of its own with exactly these, the package installed without its
# dependencies, and the tests of what each floor is for, on JAX.
FLOOR_VENV ?= build/floor-venv
FLOOR_PINS ?= keras==3.14.0 jax[cpu]==0.6.2 numpy==1.26.4
FLOOR_TESTS ?= \
	tests/test_layers.py::test_worked_example \
	tests/test_layers.py::test_matches_numpy_reference \
	tests/test_quantization.py::test_quantized_lookup_equals_keras \
	tests/test_quantization.py::test_lora_trains_factors_only_and_merges_on_save \
	tests/test_sparse_updates.py::test_sparse_sgd_equals_dense_sgd_for_the_whole_model \
	tests/test_sparse_updates.py::test_lazy_optimizers_match_numpy_reference \
	tests/test_distribution.py::test_invalid_id_under_sharding_raises_and_does_not_hang

.PHONY: demo test test-floor lint install install-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Extras: a backend or more, `bench` (matplotlib, for the bench's chart)
# and `examples` (gensim, for examples/fasttext_subwords.py).
install: $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[tensorflow,jax,bench,examples]"

install-test: $(VENV)/bin/python
	@if [ -n "$(TORCH)" ]; then $(PY) -m pip install --quiet "$(TORCH)"; fi
	$(PY) -m pip install --quiet -e ".[tensorflow,jax,torch,test]"

demo: install
	$(PY) -m keras_embedlab demo

# Each backend runs in its own pytest session (KERAS_BACKEND is read once),
# spread over TEST_WORKERS processes by pytest-xdist, a test module per
# worker at a time (`loadscope`: a module's fixtures are built once); every
# backend runs even if an earlier one fails, and the target fails if any did.
# Modules marked `backend_independent` (their code never reads the backend)
# run in the first backend's session only.
TEST_WORKERS ?= 2
test: install-test
	$(PY) -m ruff check .
	@failed=""; only=""; for b in $(BACKENDS); do \
	  echo "=== pytest with KERAS_BACKEND=$$b $${only:+-m '$$only' }==="; \
	  KERAS_BACKEND=$$b $(PY) -m pytest -q -n $(TEST_WORKERS) \
	    --dist loadscope --durations=20 $${only:+-m "$$only"} \
	    || failed="$$failed $$b"; \
	  only="not backend_independent"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED backends:$$failed"; exit 1; fi; \
	echo "all backends passed: $(BACKENDS)"

# Lookups, int8/int4 quantization, LoRA, row-sparse training and the
# sharded invalid-id check (jax.shard_map) with the floor versions; also
# checks that the installed package ships py.typed.
test-floor:
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLOOR_VENV)/bin/python -m pip install --quiet $(foreach p,$(FLOOR_PINS),"$(p)") pytest
	$(FLOOR_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall .
	cd $(FLOOR_VENV) && bin/python -c "import importlib.resources as r, keras_embedlab as k; \
	  assert r.files(k).joinpath('py.typed').is_file(), 'py.typed not installed'"
	KERAS_BACKEND=jax $(FLOOR_VENV)/bin/python -m pytest -q $(FLOOR_TESTS)

lint: install-test
	$(PY) -m ruff check .
