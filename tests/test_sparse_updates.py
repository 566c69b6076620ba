"""Row-sparse training (`sparse=True`, `RowSparseModel`, sparse optimizers).

Supported on TensorFlow, JAX and PyTorch; every test below runs on each.
"""

import os
import re

import keras
import numpy as np
import pytest
from helpers import BACKEND

import keras_embedlab as kel

V, D, B, BAG = 40, 4, 6, 5


def _batches(steps, vocabulary=V, seed=0):
    """Ids with duplicates inside each batch, and a cotangent per position."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(steps):
        ids = rng.integers(0, vocabulary // 2, (B, BAG)).astype("int32")
        ids[0, :3] = ids[1, 0]  # the same row several times in one batch
        batches.append((ids, rng.normal(size=(B, BAG, D)).astype("float32")))
    return batches


def _dot_loss(y_true, y_pred):
    # Per sample sum(rows * cotangent); Keras averages over the batch, so
    # each position's row gradient is cotangent / B.
    return keras.ops.sum(y_true * y_pred, axis=(1, 2))


def _table():
    return np.random.default_rng(1).normal(size=(V, D)).astype("float32")


def _table_model(sparse, model_class=None, **layer_kwargs):
    ids = keras.Input((BAG,), dtype="int32")
    layer = kel.LookupEmbedding(V, D, weights=_table(), sparse=sparse,
                                name="table", **layer_kwargs)
    model_class = model_class or (kel.RowSparseModel if sparse
                                  else keras.Model)
    return model_class(ids, layer(ids))


def _head_model(sparse, table_kwargs=None):
    """Table -> pooling -> Dense(1), the benchmark's model, small."""
    ids = keras.Input((BAG,), dtype="int32")
    rows = kel.LookupEmbedding(V, D, weights=_table(), sparse=sparse,
                               **(table_kwargs or {}))(ids)
    pooled = keras.layers.GlobalAveragePooling1D()(rows)
    out = keras.layers.Dense(1, kernel_initializer="ones")(pooled)
    return (kel.RowSparseModel if sparse else keras.Model)(ids, out)


def _fit_head(model, steps=4):
    rng = np.random.default_rng(2)
    for _ in range(steps):
        ids = rng.integers(0, V // 2, (B, BAG)).astype("int32")
        ids[0, :3] = ids[1, 0]
        model.train_on_batch(ids, rng.normal(size=(B, 1)).astype("float32"))
    return model.get_weights()


def _lazy_reference(table, batches, update):
    """NumPy: sum duplicate ids, then `update(row, grad, step)` per row."""
    table = table.copy()
    for step, (ids, cotangent) in enumerate(batches, start=1):
        grads = {}
        for row, grad in zip(ids.reshape(-1), cotangent.reshape(-1, D) / B):
            grads[row] = grads.get(row, 0.0) + grad
        for row, grad in grads.items():
            if grad.any():
                table[row] = update(row, table[row], grad, step)
    return table


def _lazy_adam(lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m, v = np.zeros((V, D)), np.zeros((V, D))

    def update(row, value, grad, step):
        m[row] = beta_1 * m[row] + (1 - beta_1) * grad
        v[row] = beta_2 * v[row] + (1 - beta_2) * grad**2
        alpha = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        return value - alpha * m[row] / (np.sqrt(v[row]) + epsilon)

    return update


def _lazy_momentum(lr=0.05, momentum=0.9, nesterov=False):
    velocity = np.zeros((V, D))

    def update(row, value, grad, step):
        velocity[row] = momentum * velocity[row] - lr * grad
        if nesterov:
            return value + momentum * velocity[row] - lr * grad
        return value + velocity[row]

    return update


def _train_table(model, batches):
    for ids, cotangent in batches:
        model.train_on_batch(ids, cotangent)
    return model.get_weights()[0]


def test_sparse_sgd_equals_dense_sgd_for_the_whole_model():
    sparse = _head_model(True)
    sparse.compile(kel.SparseSGD(0.1), "mse")
    dense = _head_model(False)
    dense.compile(keras.optimizers.SGD(0.1), "mse")
    for got, expected in zip(_fit_head(sparse), _fit_head(dense)):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert not np.allclose(sparse.get_weights()[0], _table())


@pytest.mark.parametrize("optimizer,update", [
    pytest.param(lambda: kel.LazyAdam(0.01), _lazy_adam, id="LazyAdam"),
    pytest.param(lambda: kel.SparseSGD(0.05, momentum=0.9),
                 _lazy_momentum, id="SparseSGD-momentum"),
    pytest.param(lambda: kel.SparseSGD(0.05, momentum=0.9, nesterov=True),
                 lambda: _lazy_momentum(nesterov=True),
                 id="SparseSGD-nesterov"),
])
def test_lazy_optimizers_match_numpy_reference(optimizer, update):
    model = _table_model(True)
    model.compile(optimizer(), _dot_loss)
    batches = _batches(5)
    got = _train_table(model, batches)
    expected = _lazy_reference(_table(), batches, update())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Rows never looked up are bit-for-bit what they were.
    assert np.array_equal(got[V // 2:], _table()[V // 2:])


def test_sparse_adagrad_equals_dense_adagrad():
    sparse = _table_model(True)
    sparse.compile(kel.SparseAdagrad(0.1), _dot_loss)
    dense = _table_model(False)
    dense.compile(keras.optimizers.Adagrad(0.1), _dot_loss)
    batches = _batches(5)
    np.testing.assert_allclose(_train_table(sparse, batches),
                               _train_table(dense, batches), atol=1e-6)


def test_duplicate_ids_accumulate():
    model = _table_model(True)
    model.compile(kel.SparseSGD(1.0), _dot_loss)
    ids = np.full((B, BAG), 3, "int32")
    ids[:, 0] = 7
    cotangent = np.ones((B, BAG, D), "float32")
    got = _train_table(model, [(ids, cotangent)])
    table = _table()
    # Row 3 appears B * (BAG - 1) times, each with gradient 1 / B.
    np.testing.assert_allclose(got[3], table[3] - (BAG - 1), atol=1e-6)
    np.testing.assert_allclose(got[7], table[7] - 1.0, atol=1e-6)
    others = np.setdiff1d(np.arange(V), [3, 7])
    assert np.array_equal(got[others], table[others])


def test_lazy_adam_first_step_equals_adam_for_every_variable():
    # From zero moments, one Adam step moves only rows with a gradient, so
    # lazy and dense Adam agree; the Dense head gets the Keras Adam rule.
    sparse = _head_model(True)
    sparse.compile(kel.LazyAdam(0.01), "mse")
    dense = _head_model(False)
    dense.compile(keras.optimizers.Adam(0.01), "mse")
    for got, expected in zip(_fit_head(sparse, 1), _fit_head(dense, 1)):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def _adam_rows_inputs():
    rng = np.random.default_rng(3)
    m, g = rng.normal(size=(2, 50, D)).astype("float32")
    v = rng.random((50, D)).astype("float32")
    return m, v, g


def test_adam_rows_is_adams_rule():
    # LazyAdam's rule on gathered rows (`backend.adam_rows`, PyTorch's in
    # place): m, v and the rows' change, against NumPy.
    from keras_embedlab import backend

    m, v, g = _adam_rows_inputs()
    beta_1, beta_2, alpha, epsilon = 0.9, 0.999, 0.003, 1e-7
    cast = keras.ops.convert_to_tensor
    got = backend.adam_rows(cast(m), cast(v), cast(g), cast(beta_1),
                            cast(beta_2), cast(alpha), epsilon)
    m, v, g = (a.astype("float64") for a in (m, v, g))
    new_m = m + (g - m) * (1 - beta_1)
    new_v = v + (g**2 - v) * (1 - beta_2)
    expected = (new_m, new_v, -alpha * new_m / (np.sqrt(new_v) + epsilon))
    # float32 against float64: a small m (g close to m) or v loses digits.
    for got_part, expected_part in zip(got, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got_part),
                                   expected_part, rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(BACKEND != "torch", reason="eager PyTorch only: JAX and "
                    "TensorFlow arrays are immutable (XLA fuses the rule)")
def test_adam_rows_updates_the_gathered_rows_in_place_on_torch():
    # One kernel per operation in eager PyTorch: the moments are updated in
    # their gathered copies rather than in new tensors.
    from keras_embedlab import backend

    m, v, g = (keras.ops.convert_to_tensor(a) for a in _adam_rows_inputs())
    got_m, got_v, change = backend.adam_rows(m, v, g, 0.9, 0.999, 0.003,
                                             1e-7)
    assert got_m is m and got_v is v
    assert change.data_ptr() not in (m.data_ptr(), v.data_ptr(),
                                     g.data_ptr())


@pytest.mark.parametrize("optimizer", [
    pytest.param(lambda: kel.LazyAdam(0.01), id="LazyAdam"),
    pytest.param(lambda: kel.SparseSGD(0.1), id="SparseSGD"),
])
def test_padding_masked_and_invalid_ids_leave_rows_unchanged(optimizer):
    model = _table_model(True, padding_idx=5, mask_zero=True,
                         invalid_ids="zeros")

    def position_loss(y_true, y_pred):  # per position, to take the mask
        return keras.ops.sum(y_true * y_pred, axis=-1)

    model.compile(optimizer(), position_loss)
    batches = _batches(3)
    for ids, _ in batches:
        ids[:, 0] = 5  # padding
        ids[:, 1] = -3  # invalid: a zero row, must not wrap to row V - 3
        ids[:, 2] = V + 4  # invalid
        ids[:, 3] = 0  # masked
    got = _train_table(model, batches)
    table = _table()
    assert np.array_equal(got[[0, 5]], table[[0, 5]])
    assert np.array_equal(got[V // 2:], table[V // 2:])
    assert not np.allclose(got[:V // 2], table[:V // 2])


def test_shared_table_called_twice():
    ids_a = keras.Input((BAG,), dtype="int32")
    ids_b = keras.Input((BAG,), dtype="int32")
    models = {}
    for sparse in (True, False):
        table = kel.LookupEmbedding(V, D, weights=_table(), sparse=sparse)
        joined = keras.layers.Concatenate()([table(ids_a), table(ids_b)])
        out = keras.layers.Dense(1)(keras.layers.Flatten()(joined))
        models[sparse] = (kel.RowSparseModel if sparse else keras.Model)(
            [ids_a, ids_b], out)
    models[True].compile(kel.SparseSGD(0.1), "mse")
    models[False].compile(keras.optimizers.SGD(0.1), "mse")
    models[False].set_weights(models[True].get_weights())
    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, V, (B, BAG)).astype("int32") for _ in range(2))
    y = rng.normal(size=(B, 1)).astype("float32")
    for model in models.values():
        model.fit([a, b], y, epochs=3, verbose=0)
    for got, expected in zip(models[True].get_weights(),
                             models[False].get_weights()):
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.skipif(BACKEND == "tensorflow",
                    reason="TensorFlow keeps IndexedSlices (next test)")
def test_sparse_table_gradient_is_dense_elsewhere():
    # A plain Keras gradient sees ordinary rows.
    from keras_embedlab.testing import layer_gradients

    layer = kel.LookupEmbedding(V, D, sparse=True)
    ids = np.array([[1, 2, 2]], "int32")
    (grad,) = layer_gradients(layer, ids, np.ones((1, 3, D), "float32"))
    assert grad.shape == (V, D) and grad[2, 0] == 2.0


@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="only TensorFlow has IndexedSlices gradients")
def test_tensorflow_gradient_stays_indexed_slices():
    import tensorflow as tf

    layer = kel.LookupEmbedding(V, D, sparse=True)
    ids = np.array([[1, 2, 2]], "int32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(ids))
    grad = tape.gradient(loss, layer.embeddings.value)
    assert isinstance(grad, tf.IndexedSlices)
    assert sorted(grad.indices.numpy().tolist()) == [1, 2, 2]


@pytest.mark.skipif(BACKEND == "tensorflow",
                    reason="TensorFlow trains lazily (next test)")
def test_plain_model_refuses_dense_gradient_for_sparse_table():
    # The table's gradient reaches the optimizer dense: it refuses rather
    # than silently applying the dense rule.
    model = _table_model(True, model_class=keras.Model)
    model.compile(kel.LazyAdam(0.01), _dot_loss)
    with pytest.raises(ValueError, match="dense gradient for the table"):
        model.train_on_batch(*_batches(1)[0])


@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="only TensorFlow keeps a plain model row-sparse")
def test_plain_model_gets_lazy_updates_on_tensorflow():
    # On TensorFlow the optimizer alone keeps updates sparse.
    model = _table_model(True, model_class=keras.Model)
    model.compile(kel.LazyAdam(0.01), _dot_loss)
    batches = _batches(3)
    expected = _lazy_reference(_table(), batches, _lazy_adam())
    np.testing.assert_allclose(_train_table(model, batches), expected,
                               rtol=1e-5, atol=1e-6)


def test_row_sparse_model_needs_a_row_sparse_optimizer():
    model = _table_model(True)
    model.compile(keras.optimizers.Adam(), _dot_loss)
    ids, cotangent = _batches(1)[0]
    with pytest.raises(ValueError, match="LazyAdam, SparseSGD or Sparse"):
        model.train_on_batch(ids, cotangent)


@pytest.mark.parametrize("kwargs,name", [
    ({"weight_decay": 0.01}, "weight_decay"),
    ({"clipnorm": 1.0}, "clipnorm"),
    ({"global_clipnorm": 1.0}, "global_clipnorm"),
    ({"use_ema": True}, "use_ema"),
    ({"gradient_accumulation_steps": 2}, "gradient_accumulation_steps"),
])
def test_unsupported_optimizer_options_raise(kwargs, name):
    for optimizer in (kel.LazyAdam, kel.SparseSGD, kel.SparseAdagrad):
        with pytest.raises(ValueError, match=f"`{name}` is not supported"):
            optimizer(**kwargs)
    with pytest.raises(ValueError, match="amsgrad"):
        kel.LazyAdam(amsgrad=True)


@pytest.mark.parametrize("kwargs", [
    {"embeddings_regularizer": "l2"},
    {"embeddings_constraint": "unit_norm"},
    {"sparse": 1},
], ids=["regularizer", "constraint", "not-bool"])
def test_bad_sparse_arguments_raise(kwargs):
    sparse = kwargs.pop("sparse", True)
    with pytest.raises(ValueError, match="sparse"):
        kel.LookupEmbedding(V, D, sparse=sparse, **kwargs)


def test_sparse_table_with_lora_is_refused_at_construction():
    # Not at the first call (where `build` enables LoRA).
    with pytest.raises(ValueError, match=re.escape(
            "`sparse=True` updates table rows, but LoRA freezes the table "
            "and trains two dense factors instead. Received: sparse=True "
            "with lora_rank=1 on layer 'tokens'.")):
        kel.LookupEmbedding(V, D, sparse=True, lora_rank=1, name="tokens")
    layer = kel.LookupEmbedding(V, D, sparse=True, name="tokens")
    layer.build()
    with pytest.raises(ValueError, match="Layer 'tokens' has sparse=True, "
                       "but LoRA freezes the table"):
        layer.enable_lora(1)
    assert not layer.lora_enabled and len(layer.variables) == 1


def test_saved_model_keeps_sparse_and_optimizer(tmp_path):
    model = _table_model(True)
    model.compile(kel.LazyAdam(0.01), _dot_loss)
    batches = _batches(4)
    _train_table(model, batches[:2])
    path = os.path.join(tmp_path, "sparse.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects={
        "_dot_loss": _dot_loss})
    assert isinstance(loaded, kel.RowSparseModel)
    assert loaded.get_layer("table").sparse is True
    assert isinstance(loaded.optimizer, kel.LazyAdam)
    # Training goes on from the saved moments exactly as it would have.
    np.testing.assert_allclose(_train_table(loaded, batches[2:]),
                               _train_table(model, batches[2:]), atol=1e-6)


def test_shared_table_gets_one_lazy_update_per_step():
    ids_a = keras.Input((BAG,), dtype="int32")
    ids_b = keras.Input((BAG,), dtype="int32")
    table = kel.LookupEmbedding(V, D, weights=_table(), sparse=True)
    both = keras.layers.Concatenate(axis=1)([table(ids_a), table(ids_b)])
    model = kel.RowSparseModel([ids_a, ids_b], both)
    model.compile(kel.LazyAdam(0.01), _dot_loss)
    batches = []
    for (a, ca), (b, cb) in zip(_batches(3, seed=4), _batches(3, seed=5)):
        b[:, 0] = a[:, 0]  # the same rows through both calls
        batches.append((a, b, np.concatenate([ca, cb], axis=1)))
    for a, b, cotangent in batches:
        model.train_on_batch([a, b], cotangent)
    expected = _lazy_reference(
        _table(), [(np.concatenate([a, b], 1), c) for a, b, c in batches],
        _lazy_adam())
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-5,
                               atol=1e-6)


class _Flagged(keras.layers.Layer):
    """A trainable layer with a `sparse` attribute and no table."""

    sparse = True

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones")

    def call(self, x):
        return keras.ops.cast(x, "float32") * self.scale


def _category_encoding():
    if BACKEND == "tensorflow":
        pytest.skip("Keras's CategoryEncoding(sparse=True) fails inside a "
                    "TensorFlow train step on its own (float32 inputs)")
    if BACKEND == "torch":
        pytest.skip("Keras's CategoryEncoding refuses sparse=True on "
                    "PyTorch ('Unsupported value `sparse=True`')")
    return keras.layers.CategoryEncoding(V, output_mode="count", sparse=True)


@pytest.mark.parametrize("make", [
    pytest.param(_Flagged, id="layer-with-sparse-attribute"),
    pytest.param(_category_encoding, id="CategoryEncoding"),
])
def test_other_layers_with_a_sparse_attribute_are_not_tables(make):
    # These have `.sparse` but no table (they once crashed RowSparseModel
    # with "no attribute 'embeddings'").
    ids = keras.Input((BAG,), dtype="int32")
    rows = kel.LookupEmbedding(V, D, weights=_table(), sparse=True,
                               name="table")(ids)
    pooled = keras.layers.GlobalAveragePooling1D()(rows)
    other = make()
    assert other.sparse is True
    counted = keras.layers.Dense(1, kernel_initializer="ones")(other(ids))
    out = keras.layers.Add()([keras.layers.Dense(1)(pooled), counted])
    model = kel.RowSparseModel(ids, out)
    model.compile(kel.SparseSGD(0.1), "mse")
    ids_batch, _ = _batches(1)[0]
    model.train_on_batch(ids_batch, np.ones((B, 1), "float32"))
    trained = model.get_layer("table").get_weights()[0]
    untouched = np.setdiff1d(np.arange(V), ids_batch)
    assert np.array_equal(trained[untouched], _table()[untouched])
    assert not np.allclose(trained[ids_batch[0, 0]],
                           _table()[ids_batch[0, 0]])


@pytest.mark.parametrize("optimizer", [
    pytest.param(lambda: kel.LazyAdam(0.01), id="LazyAdam"),
    pytest.param(lambda: kel.SparseSGD(0.1), id="SparseSGD"),
])
def test_frozen_sparse_table_is_not_traced_or_updated(optimizer):
    model = _head_model(True)
    table = model.layers[1]
    table.trainable = False
    model.compile(optimizer(), "mse")
    head_before = model.layers[-1].get_weights()[0].copy()
    _fit_head(model, steps=2)
    assert np.array_equal(table.get_weights()[0], _table())
    assert not np.allclose(model.layers[-1].get_weights()[0], head_before)


def test_mixed_float16_loss_scaling_is_refused_clearly():
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        model = _head_model(True)
        model.compile(kel.LazyAdam(0.01), "mse")
        with pytest.raises(ValueError,
                           match="LossScaleOptimizer.*mixed_bfloat16"):
            _fit_head(model, steps=1)
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = _head_model(True)
        model.compile(kel.LazyAdam(0.01), "mse")
        ids = np.array([[1, 2, 3, 1, 2]] * B, "int32")
        model.train_on_batch(ids, np.ones((B, 1), "float32"))
    finally:
        keras.config.set_dtype_policy(previous)
    trained = model.layers[1].get_weights()[0]
    assert np.array_equal(trained[4:], _table()[4:])
    assert not np.allclose(trained[1:4], _table()[1:4])


ERROR_MODE_OPTIMIZERS = [
    pytest.param(lambda: kel.LazyAdam(0.01), id="LazyAdam"),
    pytest.param(lambda: kel.SparseSGD(0.1, momentum=0.9), id="SparseSGD"),
]


def _bad_batch():
    ids, cotangent = _batches(1)[0]
    ids[2, 1] = V + 3
    return ids, cotangent


@pytest.mark.parametrize("optimizer", ERROR_MODE_OPTIMIZERS)
def test_invalid_id_in_error_mode_raises(optimizer):
    from helpers import invalid_id_error

    model = _table_model(True)
    model.compile(optimizer(), _dot_loss)
    message = rf"invalid id: \D*{V + 3}"  # TensorFlow adds brackets
    with pytest.raises(invalid_id_error(), match=message):
        model.train_on_batch(*_bad_batch())


@pytest.mark.skipif(BACKEND == "jax", reason="after an exception in a step, "
                    "Keras's JAX trainer has donated (deleted) the model's "
                    "buffers, so the weights cannot be read back")
@pytest.mark.parametrize("optimizer", ERROR_MODE_OPTIMIZERS)
def test_failed_step_updates_nothing_and_training_goes_on(optimizer):
    model = _table_model(True)
    model.compile(optimizer(), _dot_loss)
    ids, cotangent = _bad_batch()
    with pytest.raises(Exception, match="invalid id"):
        model.train_on_batch(ids, cotangent)
    assert np.array_equal(model.get_weights()[0], _table())
    # A valid batch then trains the rows in it, and only those. (TensorFlow
    # may have counted the failed step in `iterations`: the counter's update
    # does not wait for the assertion.)
    ids[2, 1] = 1
    trained = _train_table(model, [(ids, cotangent)])
    untouched = np.setdiff1d(np.arange(V), ids)
    assert np.array_equal(trained[untouched], _table()[untouched])
    assert not np.allclose(trained[ids[0, 0]], _table()[ids[0, 0]])


@pytest.mark.parametrize("sparse_optimizer, dense_optimizer, moments", [
    pytest.param(lambda: kel.LazyAdam(0.01),
                 lambda: keras.optimizers.Adam(0.01), True, id="LazyAdam"),
    pytest.param(lambda: kel.SparseSGD(0.05, momentum=0.9),
                 lambda: keras.optimizers.SGD(0.05, momentum=0.9), True,
                 id="SparseSGD-momentum"),
    pytest.param(lambda: kel.SparseAdagrad(0.1),
                 lambda: keras.optimizers.Adagrad(0.1), False,
                 id="SparseAdagrad"),
])
def test_unmarked_tables_get_the_dense_rule(sparse_optimizer,
                                            dense_optimizer, moments):
    # A table is row-sparse by its mark (`sparse=True`) only. A
    # `keras.layers.Embedding` has none: the dense rule, on every backend,
    # although its TensorFlow gradient is an `IndexedSlices`.
    def trained(optimizer):
        ids = keras.Input((BAG,), dtype="int32")
        rows = keras.layers.Embedding(V, D, weights=[_table()])(ids)
        model = keras.Model(ids, rows)
        model.compile(optimizer(), _dot_loss)
        steps = []
        for ids, cotangent in batches:
            model.train_on_batch(ids, cotangent)
            steps.append(model.get_weights()[0])
        return steps

    batches = _batches(1) + _batches(1, seed=3)
    batches[1][0][:] += V // 2  # The second batch: other rows only.
    got, expected = trained(sparse_optimizer), trained(dense_optimizer)
    np.testing.assert_allclose(got[-1], expected[-1], rtol=1e-5, atol=1e-6)
    if moments:
        # The rows of the first batch move again in the second (the dense
        # rule), where a lazy rule would leave them.
        first = np.unique(batches[0][0])
        assert (got[1][first] != got[0][first]).any(axis=-1).all()
