"""Shared assertions and builders for the tests."""

import keras
import numpy as np
import pytest

import keras_embedlab as kel

BACKEND = keras.backend.backend()
WORKED_WEIGHTS = np.array(
    [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 0.0, 0.1, 0.2]],
    dtype="float32",
)

# Both layers, for tests of the behaviour they share.
LAYERS = [
    pytest.param(kel.LookupEmbedding, id="LookupEmbedding"),
    pytest.param(kel.OneHotDense, id="OneHotDense"),
]

# (shape of ids, dtype) for parity tests over ranks 1-3 and both int dtypes.
ID_CASES = [
    pytest.param(shape, dtype, id=f"rank{len(shape)}-{dtype}")
    for shape in [(7,), (4, 5), (2, 3, 4)]
    for dtype in ["int32", "int64"]
]


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def assert_equal(actual, expected):
    np.testing.assert_array_equal(to_numpy(actual), to_numpy(expected))


def assert_close(actual, expected, atol=1e-5):
    np.testing.assert_allclose(
        to_numpy(actual), to_numpy(expected), rtol=0, atol=atol
    )


def random_ids(shape, dtype, input_dim, seed=0):
    """Random ids that include 0 and input_dim - 1 and repeat some ids."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, input_dim, size=shape).astype(dtype)
    flat = ids.reshape(-1)
    flat[0], flat[-1], flat[1] = 0, input_dim - 1, flat[2]
    return ids


def random_table(input_dim, output_dim, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(input_dim, output_dim)).astype("float32")


def invalid_id_error():
    """The exception a compiled `predict`/`fit` raises on this backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.errors.InvalidArgumentError
    if BACKEND == "jax":
        import jax

        # The host callback's ValueError reaches the caller as a
        # JaxRuntimeError carrying its message; inside `predict` and `fit`
        # Keras re-raises some of them as ValueError.
        return (jax.errors.JaxRuntimeError, ValueError)
    return ValueError
