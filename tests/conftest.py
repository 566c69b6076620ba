import gc

import keras
import numpy as np
import pytest


def pytest_collection_finish(session):
    # The objects alive after collection (Keras, the backend, the test
    # modules: millions of them) live until the process ends. Frozen, the
    # garbage collector no longer walks them on each full collection: the
    # suite ran about 2x faster on JAX (`tests/test_quantization.py` and
    # `tests/test_layers.py`: 82 s -> 42 s), each test's garbage still
    # collected as usual.
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def seed_everything():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    # Keras's global state (layer names, TensorFlow's graph and kernel
    # cache, PyTorch's compiled functions) is reset for each test, but not
    # with `free_memory=True`'s forced full garbage collection (about 0.5 s
    # a test on JAX, a third of the suite's time): as Keras's own
    # `testing.TestCase` does; Python collects on its own.
    keras.backend.clear_session(free_memory=False)
