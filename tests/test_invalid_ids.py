"""Invalid ids: one behaviour on every backend and in every execution mode."""

import warnings

import keras
import numpy as np
import pytest
from helpers import (
    BACKEND,
    LAYERS,
    WORKED_WEIGHTS,
    assert_equal,
    invalid_id_error,
    to_numpy,
)

import keras_embedlab as kel
from keras_embedlab.testing import layer_gradients

BAD_IDS = [
    pytest.param(-1, id="minus-one"),
    pytest.param(3, id="input_dim"),
    pytest.param(1000, id="far-above"),
]


def message_pattern(bad_id):
    # The message names the offending id and the valid range.
    return rf"(?s)invalid id.*{bad_id}.*\[0, 3\)"


def model_of(layer, seq_len=4):
    inputs = keras.Input((seq_len,), dtype="int32")
    x = layer(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_error_eager(layer_cls, bad_id):
    layer = layer_cls(3, 4, weights=WORKED_WEIGHTS)
    with pytest.raises(ValueError, match=message_pattern(bad_id)):
        layer(np.array([[0, 1], [2, bad_id]]))


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("method", ["predict", "fit", "evaluate", "call"])
def test_error_in_compiled_model(layer_cls, bad_id, method):
    # A fresh model per method: after any exception inside `predict` or
    # `fit`, Keras's JAX trainer leaves the model's variables detached (its
    # state is only synced back at the end of the loop), whatever the cause.
    model = model_of(layer_cls(3, 4, weights=WORKED_WEIGHTS))
    ids = np.array([[0, 1, 2, 1], [2, bad_id, 0, 0]], "int32")
    good = np.array([[0, 1, 2, 1], [2, 2, 0, 0]], "int32")
    targets = np.zeros((2, 1), "float32")
    if method == "call":
        model(good)
        with pytest.raises(ValueError, match=message_pattern(bad_id)):
            model(ids)
        return
    run = {
        "predict": lambda x: model.predict(x, verbose=0),
        "fit": lambda x: model.fit(x, targets, verbose=0),
        "evaluate": lambda x: model.evaluate(x, targets, verbose=0),
    }[method]
    run(good)
    with pytest.raises(invalid_id_error(), match=message_pattern(bad_id)):
        run(ids)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_error_in_run_eagerly_model(layer_cls):
    model = model_of(layer_cls(3, 4, weights=WORKED_WEIGHTS))
    model.compile("sgd", "mse", run_eagerly=True)
    with pytest.raises(ValueError, match=message_pattern(-1)):
        model.fit(np.array([[0, -1, 0, 0]]), np.zeros((1, 1)), verbose=0)


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_zeros_lookup(bad_id):
    layer = kel.LookupEmbedding(3, 4, weights=WORKED_WEIGHTS,
                                invalid_ids="zeros")
    ids = np.array([[0, bad_id], [bad_id, 2]])
    expected = np.stack([
        [WORKED_WEIGHTS[0], np.zeros(4)], [np.zeros(4), WORKED_WEIGHTS[2]]
    ])
    assert_equal(layer(ids), expected)
    # Never a wrap: -1 does not give the last row.
    assert not np.array_equal(to_numpy(layer(ids))[0, 1], WORKED_WEIGHTS[-1])
    model = model_of(layer, seq_len=2)
    inner = keras.Model(model.inputs, model.layers[1].output)
    assert_equal(inner.predict(ids.astype("int32"), verbose=0), expected)


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_zeros_one_hot_dense_gives_bias_and_activation(bad_id):
    bias = np.array([0.5, -0.5, 1.0, -2.0], "float32")
    layer = kel.OneHotDense(3, 4, use_bias=True, activation="relu",
                            weights=[WORKED_WEIGHTS, bias],
                            invalid_ids="zeros")
    ids = np.array([1, bad_id])
    expected = np.maximum(
        np.stack([WORKED_WEIGHTS[1] + bias, bias]), 0
    )
    assert_equal(layer(ids), expected)
    model = keras.Sequential([keras.Input((2,), dtype="int32"), layer])
    assert_equal(model.predict(ids[None].astype("int32"), verbose=0),
                 expected[None])


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_zeros_invalid_ids_get_no_gradient_and_train(layer_cls):
    layer = layer_cls(3, 4, weights=WORKED_WEIGHTS, invalid_ids="zeros")
    ids = np.array([-1, 1, 3, 1])
    (grad,) = layer_gradients(layer, ids, np.ones((4, 4), "float32"))
    expected = np.zeros((3, 4), "float32")
    expected[1] = 2.0
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    model = model_of(layer, seq_len=4)
    history = model.fit(ids[None].astype("int32"), np.ones((1, 1)), epochs=3,
                        verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    trained = to_numpy(layer.weights[0])
    assert np.all(np.isfinite(trained))
    np.testing.assert_array_equal(trained[[0, 2]], WORKED_WEIGHTS[[0, 2]])


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("invalid_ids", ["error", "zeros"])
def test_backend_jit_compiled_function(layer_cls, invalid_ids):
    """Compiled by the backend directly, outside Keras's trainer."""
    layer = layer_cls(3, 4, weights=WORKED_WEIGHTS, invalid_ids=invalid_ids)
    ids = np.array([1, -1, 7], "int32")
    zero_rows = np.stack([WORKED_WEIGHTS[1], np.zeros(4), np.zeros(4)])
    if BACKEND == "tensorflow":
        import tensorflow as tf

        # XLA drops assertions, so even in "error" mode the documented result
        # is zero rows: never another row's vector.
        compiled = tf.function(layer, jit_compile=True)
        assert_equal(compiled(tf.constant(ids)), zero_rows)
        graph = tf.function(layer, jit_compile=False)
        if invalid_ids == "error":
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match=message_pattern(-1)):
                graph(tf.constant(ids))
        else:
            assert_equal(graph(tf.constant(ids)), zero_rows)
    elif BACKEND == "jax":
        import jax

        variables = [v.value for v in layer.weights]

        @jax.jit
        def compiled(ids):
            return layer.stateless_call(variables, [], ids)[0]

        if invalid_ids == "error":
            with pytest.raises(jax.errors.JaxRuntimeError,
                               match=message_pattern(-1)):
                to_numpy(compiled(ids))
        else:
            assert_equal(compiled(ids), zero_rows)
    elif BACKEND == "torch":
        import torch

        # Dynamo captures the graph as `torch.compile` does; the eager
        # backend skips Inductor's C++ build (test_keras_jit_compile_true
        # runs Keras's own `jit_compile=True`, which uses Inductor).
        compiled = torch.compile(layer, backend="eager")
        if invalid_ids == "error":
            with pytest.raises(ValueError, match=message_pattern(-1)):
                compiled(torch.as_tensor(ids))
        else:
            assert_equal(compiled(torch.as_tensor(ids)), zero_rows)
    else:
        pytest.fail(f"no compiled-mode expectation for backend {BACKEND}")


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_keras_jit_compile_true(layer_cls):
    """`compile(jit_compile=True)`: "zeros" runs compiled; "error" raises."""
    zeros_model = model_of(layer_cls(3, 4, weights=WORKED_WEIGHTS,
                                     invalid_ids="zeros"))
    zeros_model.compile("sgd", "mse", jit_compile=True)
    assert zeros_model.jit_compile is True
    ids = np.array([[0, -1, 9, 2]], "int32")
    inner = keras.Model(zeros_model.inputs, zeros_model.layers[1].output)
    inner.compile(jit_compile=True)
    expected = WORKED_WEIGHTS[[0, 0, 0, 2]]
    expected[1:3] = 0.0
    assert_equal(inner.predict(ids, verbose=0), expected[None])
    zeros_model.predict(ids, verbose=0)

    error_model = model_of(layer_cls(3, 4, weights=WORKED_WEIGHTS))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error_model.compile("sgd", "mse", jit_compile=True)
    if BACKEND == "tensorflow":
        # XLA cannot raise, so the layer opts out of XLA and Keras says so.
        assert error_model.jit_compile is False
        assert any("jit_compile" in str(w.message) for w in caught)
    else:
        assert error_model.jit_compile is True
    with pytest.raises(invalid_id_error(), match=message_pattern(-1)):
        error_model.predict(ids, verbose=0)


def test_keras_embedding_behaviour_we_replace():
    """Documents why: keras.layers.Embedding silently wraps -1."""
    keras_layer = keras.layers.Embedding(3, 4, weights=WORKED_WEIGHTS)
    assert_equal(keras_layer(np.array([-1])), WORKED_WEIGHTS[[-1]])


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize(
    "bad_id,dtype",
    [(2**32 + 1, "int64"), (2**31 + 5, "uint32"), (-(2**40), "int64")],
)
def test_host_ids_are_checked_before_conversion(layer_cls, bad_id, dtype):
    # JAX without x64 truncates int64 to int32: 2**32 + 1 would become 1.
    ids = np.array([1, bad_id], dtype)
    with pytest.raises(ValueError, match=message_pattern(bad_id)):
        layer_cls(3, 4, weights=WORKED_WEIGHTS)(ids)
    zeros = layer_cls(3, 4, weights=WORKED_WEIGHTS, invalid_ids="zeros")
    assert_equal(zeros(ids), np.stack([WORKED_WEIGHTS[1], np.zeros(4)]))


# --- A refused batch, then good ones (issue 20, item 16) ------------------

def _build_refusing_model():
    inputs = keras.Input((3,), dtype="int32")
    rows = kel.LookupEmbedding(5, 2, name="emb")(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(rows))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "mse")
    return model


_RUNS = {
    "predict": lambda model, x, y: model.predict(x, verbose=0),
    "evaluate": lambda model, x, y: model.evaluate(x, y, verbose=0),
    "fit": lambda model, x, y: model.fit(x, y, shuffle=False, verbose=0
                                         ).history["loss"],
}


@pytest.mark.parametrize("method", sorted(_RUNS))
def test_model_works_after_a_refused_batch(method):
    """After `method` refuses a batch, good batches give a fresh model's
    results. TensorFlow and PyTorch keep the model as it was. On JAX,
    Keras's trainer loses the weights of a model whose step raised (see
    `backend/jax.py`): the error says so and what to do, and doing it
    works. `fit` uses SGD: on TensorFlow the refused step still advances
    `optimizer.iterations` (the counter's update does not wait for the
    failing assertion), which a step-dependent rule such as Adam's would
    show."""
    run = _RUNS[method]
    model, fresh = _build_refusing_model(), _build_refusing_model()
    weights = model.get_weights()
    fresh.set_weights(weights)
    good = np.array([[1, 2, 3], [0, 4, 2]], "int32")
    bad = np.array([[1, 2, 3], [0, 7, 2]], "int32")
    y = np.array([[1.0], [-1.0]], "float32")
    with pytest.raises(invalid_id_error(),
                       match=r"(?s)invalid id.*7.*\[0, 5\)") as error:
        run(model, bad, y)
    if BACKEND == "jax":
        text = str(error.value)
        assert "the model lost its weights: set them again " \
            "(model.set_weights with weights saved before" in text
        assert "after fit, compile with a new optimizer" in text
        model.set_weights(weights)
        if method == "fit":
            model.compile("sgd", "mse")
    np.testing.assert_allclose(run(model, good, y), run(fresh, good, y),
                               rtol=1e-6)
    np.testing.assert_allclose(to_numpy(model(good)), to_numpy(fresh(good)),
                               rtol=1e-6)


@pytest.mark.skipif(BACKEND != "torch",
                    reason="eager PyTorch pays per op; compiled TensorFlow "
                    "and JAX programs are timed, not counted")
@pytest.mark.parametrize("invalid_ids", ["error", "zeros"])
def test_torch_forward_runs_no_more_ops_than_keras(invalid_ids):
    """A valid batch's eager forward on PyTorch runs no more tensor ops
    than `keras.layers.Embedding`'s (the id check included): the fixed
    cost per call that small batches pay."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    ids = torch.tensor([[0, 3, 9], [4, 4, 1]], dtype=torch.int32)
    ours = kel.LookupEmbedding(10, 4, invalid_ids=invalid_ids)
    theirs = keras.layers.Embedding(10, 4)
    counts = []
    for layer in (ours, theirs):
        layer.build(ids.shape)
        with torch.no_grad(), Count() as count:
            layer(ids)
        counts.append(count.ops)
    theirs.embeddings.assign(ours.embeddings)
    assert_equal(ours(ids), theirs(ids))
    assert len(counts[0]) <= len(counts[1]), counts
