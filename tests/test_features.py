"""Issue 4 beyond `padding_idx`: `max_norm`, `combiner`, `reverse=True`.

Every feature is checked on both layers against a NumPy reference and
against each other (outputs, gradients, training), then in combination.
"""

import keras
import numpy as np
import pytest
from helpers import (
    BACKEND,
    LAYERS,
    assert_close,
    assert_equal,
    random_ids,
    random_table,
    to_numpy,
)

import keras_embedlab as kel
from keras_embedlab.testing import layer_gradients

COMBINERS = [pytest.param(c, id=c) for c in ("sum", "mean", "sqrtn")]
# Ranks 1-3 and both id dtypes (fewer cases than helpers.ID_CASES).
FEW_ID_CASES = [
    pytest.param(shape, dtype, id=f"rank{len(shape)}-{dtype}")
    for shape, dtype in [((7,), "int64"), ((4, 5), "int32"),
                         ((2, 3, 4), "int64")]
]
OPTIMIZERS = [pytest.param(o, id=o) for o in ("sgd", "adam")]


def twins(table, **kwargs):
    """A `LookupEmbedding` and an `OneHotDense` holding the same `table`."""
    input_dim, output_dim = table.shape
    return (kel.LookupEmbedding(input_dim, output_dim, weights=table,
                                **kwargs),
            kel.OneHotDense(input_dim, output_dim, weights=table, **kwargs))


def varied_table(input_dim=9, output_dim=4, seed=0):
    """Rows of norms from 0 to about 4, so `max_norm=1.0` clips some."""
    table = random_table(input_dim, output_dim, seed)
    table *= np.linspace(0.0, 2.0, input_dim, dtype="float32")[:, None]
    table[3] = 0.0  # a second all-zero row, which must not give NaN
    return table


# NumPy references.


def np_norms(rows, norm_type):
    return (np.abs(rows) ** norm_type).sum(-1) ** (1.0 / norm_type)


def np_clip(rows, max_norm, norm_type=2.0):
    norms = np_norms(rows, norm_type)
    over = norms > max_norm
    scale = np.where(over, max_norm / np.where(over, norms, 1.0), 1.0)
    return rows * scale[..., None]


def np_bag_weights(ids, weights=None, input_dim=9, padding_idx=None,
                   mask_zero=False):
    keep = (ids >= 0) & (ids < input_dim)
    if padding_idx is not None:
        keep &= ids != padding_idx
    if mask_zero:
        keep &= ids != 0
    weights = np.ones(ids.shape, "float32") if weights is None else weights
    return np.where(keep, weights, 0.0).astype("float32")


def np_denominator(weights, combiner):
    if combiner == "sum":
        return np.ones(weights.shape[:-1], "float32")
    if combiner == "mean":
        return weights.sum(-1)
    return np.sqrt((weights ** 2).sum(-1))


def np_bags(table, ids, combiner, weights=None, max_norm=None, **kwargs):
    rows = table[np.clip(ids, 0, len(table) - 1)]
    if max_norm is not None:
        rows = np_clip(rows, max_norm)
    weights = np_bag_weights(ids, weights, len(table), **kwargs)
    sums = (rows * weights[..., None]).sum(-2)
    denominator = np_denominator(weights, combiner)[..., None]
    return np.where(denominator == 0, 0.0,
                    sums / np.where(denominator == 0, 1.0, denominator))


def np_bag_gradient(table, ids, cotangent, combiner, weights):
    """Gradient of `sum(bags * cotangent)` for the table, no `max_norm`."""
    denominator = np_denominator(weights, combiner)
    scale = np.where(denominator == 0, 0.0,
                     1.0 / np.where(denominator == 0, 1.0, denominator))
    per_id = (weights * scale[..., None])[..., None] * cotangent[..., None, :]
    gradient = np.zeros_like(table)
    np.add.at(gradient, ids, per_id)
    return gradient


def np_clip_gradient(table, ids, cotangent, max_norm):
    """Gradient of `sum(clip(table[ids]) * cotangent)`, 2-norm."""
    rows = table[ids]
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    over = norms > max_norm
    safe = np.where(over, norms, 1.0)
    projected = cotangent - rows * (rows * cotangent).sum(-1, keepdims=True) \
        / safe ** 2
    per_id = np.where(over, max_norm / safe * projected, cotangent)
    gradient = np.zeros_like(table)
    np.add.at(gradient, ids, per_id)
    return gradient


def assert_twin_gradients(lookup, dense, ids, cotangent, expected=None,
                          **call_kwargs):
    (g_lookup,) = layer_gradients(lookup, ids, cotangent, compiled=True,
                                  **call_kwargs)
    (g_dense,) = layer_gradients(dense, ids, cotangent, compiled=True,
                                 **call_kwargs)
    assert np.isfinite(g_lookup).all() and np.isfinite(g_dense).all()
    np.testing.assert_allclose(g_lookup, g_dense, atol=1e-5)
    if expected is not None:
        np.testing.assert_allclose(g_lookup, expected, atol=1e-5)
    return g_lookup


# max_norm


@pytest.mark.parametrize("shape,dtype", FEW_ID_CASES)
def test_max_norm_clips_rows_not_weights(shape, dtype):
    table = varied_table()
    ids = random_ids(shape, dtype, 9)
    ids.reshape(-1)[1:3] = 3  # all-zero rows: no NaN, not clipped
    lookup, dense = twins(table, max_norm=1.0)
    expected = np_clip(table[ids], 1.0)
    assert (np_norms(table[ids], 2) > 1.0).any()
    assert_close(lookup(ids), expected)
    assert_close(dense(ids), expected)
    norms = np.linalg.norm(to_numpy(lookup(ids)), axis=-1)
    assert norms.max() == pytest.approx(1.0, abs=1e-5)
    # TensorFlow's semantics: the stored rows are left as they were.
    assert_equal(lookup.embeddings, table)
    assert_equal(dense.kernel, table)
    cotangent = random_table(int(np.prod(shape)), 4, 1).reshape(shape + (4,))
    assert_twin_gradients(lookup, dense, ids, cotangent,
                          np_clip_gradient(table, ids, cotangent, 1.0))


@pytest.mark.parametrize("norm_type", [1.0, 0.5, 3],
                         ids=["p1", "p0.5", "p3"])
def test_max_norm_with_norm_type(norm_type):
    table = varied_table()
    ids = random_ids((4, 5), "int32", 9)
    ids[1] = 3  # all-zero rows
    lookup, dense = twins(table, max_norm=1.0, norm_type=norm_type)
    expected = np_clip(table[ids], 1.0, norm_type)
    assert_close(lookup(ids), expected)
    assert_close(dense(ids), expected)
    clipped = np_norms(to_numpy(lookup(ids)), norm_type)
    assert clipped.max() == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(expected, table[ids])
    assert_twin_gradients(lookup, dense, ids, np.ones((4, 5, 4), "float32"))


def test_max_norm_applies_before_bias_and_activation():
    table = np.zeros((9, 4), "float32")
    table[:2, :2] = [[3.0, 4.0], [0.3, 0.4]]
    bias = np.array([1.0, -10.0, 0.0, 0.0], "float32")
    dense = kel.OneHotDense(9, 4, use_bias=True, activation="relu",
                            weights=[table, bias], max_norm=1.0)
    assert_close(dense(np.array([0, 1, 2])),
                 [[1.6, 0.0, 0.0, 0.0], [1.3, 0.0, 0.0, 0.0], [1, 0, 0, 0]])


# combiner


@pytest.mark.parametrize("shape,dtype", FEW_ID_CASES[1:])  # bags: rank >= 2
def test_combiners_match_numpy_and_twin(shape, dtype):
    table = random_table(9, 4)
    ids = random_ids(shape, dtype, 9)
    cotangent = random_table(int(np.prod(shape[:-1])), 4, 3)
    cotangent = cotangent.reshape(shape[:-1] + (4,))
    rng = np.random.default_rng(2)
    bag_weights = rng.uniform(0.1, 2.0, shape).astype("float32")
    for combiner in ("sum", "mean", "sqrtn"):
        lookup, dense = twins(table, combiner=combiner)
        for weights in (None, bag_weights):
            kwargs = {} if weights is None else {"bag_weights": weights}
            expected = np_bags(table, ids, combiner, weights)
            out = lookup(ids, **kwargs)
            assert tuple(out.shape) == shape[:-1] + (4,)
            assert_close(out, expected)
            assert_close(dense(ids, **kwargs), expected)
        gradient = np_bag_gradient(table, ids, cotangent, combiner,
                                   np_bag_weights(ids, bag_weights))
        assert_twin_gradients(lookup, dense, ids, cotangent, gradient,
                              bag_weights=bag_weights)


def test_multi_hot_times_kernel_is_the_sum_combiner():
    table = random_table(6, 3)
    ids = np.array([[1, 4, 1, 1], [5, 0, 2, 0]], "int32")
    weights = np.array([[0.5, 2.0, 1.0, 3.0], [1.0, 1.0, 0.0, 2.0]],
                       "float32")
    counts = np.zeros((2, 6), "float32")
    weighted = np.zeros((2, 6), "float32")
    for b in range(2):
        np.add.at(counts[b], ids[b], 1.0)
        np.add.at(weighted[b], ids[b], weights[b])
    assert_equal(counts[0], [0, 3, 0, 0, 1, 0])  # a count vector
    for layer in twins(table, combiner="sum"):
        assert_close(layer(ids), counts @ table)
        assert_close(layer(ids, bag_weights=weights), weighted @ table)
    # The Dense twin is literally keras.layers.Dense on the multi-hot vector.
    bias = np.array([0.1, -0.2, 0.3], "float32")
    keras_dense = keras.layers.Dense(3, activation="tanh")
    keras_dense.build((None, 6))
    keras_dense.set_weights([table, bias])
    ours = kel.OneHotDense(6, 3, use_bias=True, activation="tanh",
                           weights=[table, bias], combiner="sum")
    assert_close(ours(ids, bag_weights=weights), keras_dense(weighted))
    assert_close(ours(ids), keras_dense(counts))


def test_empty_bags_give_zeros_without_nan():
    table = random_table(9, 4)
    ids = np.array([[2, 0, 2, 0, 2], [0] * 5, [2] * 5, [4, 1, 3, 8, 8]],
                   "int32")
    weights = np.ones((4, 5), "float32")
    weights[3] = 0.0  # a bag whose weights are all zero
    for combiner in ("sum", "mean", "sqrtn"):
        lookup, dense = twins(table, combiner=combiner, padding_idx=2,
                              mask_zero=True)
        for layer in (lookup, dense):
            out = to_numpy(layer(ids, bag_weights=weights))
            assert_equal(out, np.zeros((4, 4)))
        assert_twin_gradients(lookup, dense, ids, np.ones((4, 4), "float32"),
                              np.zeros_like(table), bag_weights=weights)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_combiner_symbolic_shape_and_no_mask(layer_cls):
    for shape in [(5,), (3, 5)]:  # batch + (bag,), batch + (3, bag)
        inputs = keras.Input(shape, dtype="int32")
        layer = layer_cls(10, 7, combiner="mean", mask_zero=True)
        outputs = layer(inputs)
        assert outputs.shape == (None, *shape[:-1], 7)
        assert layer.compute_mask(np.ones((2, *shape), "int32")) is None
        model = keras.Model(inputs, outputs)
        ids = np.ones((2, *shape), "int32")
        assert model.predict(ids, verbose=0).shape == (2, *shape[:-1], 7)


def test_bag_weights_as_a_model_input():
    table = random_table(6, 2)
    ids = keras.Input((4,), dtype="int32")
    weights = keras.Input((4,))
    outputs = kel.LookupEmbedding(6, 2, weights=table, combiner="sqrtn")(
        ids, bag_weights=weights
    )
    model = keras.Model([ids, weights], outputs)
    x = np.array([[1, 2, 3, 5], [4, 4, 0, 1]], "int32")
    w = np.array([[1.0, 0.5, 2.0, 1.0], [1.0, 1.0, 3.0, 0.0]], "float32")
    assert_close(model.predict([x, w], verbose=0),
                 np_bags(table, x, "sqrtn", w))


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_bag_weight_and_reverse_errors(layer_cls):
    ids = np.array([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"`bag_weights` must have the "
                       r"shape of the ids.*\(1, 2\) for ids of shape \(1, 3\)"):
        layer_cls(5, 2, combiner="sum")(ids, bag_weights=np.ones((1, 2)))
    with pytest.raises(ValueError, match="`bag_weights` needs a `combiner`"):
        layer_cls(5, 2)(ids, bag_weights=np.ones((1, 3)))
    for rank1 in (np.array(3), np.array([1, 2, 3])):
        with pytest.raises(ValueError, match=r"ids need a batch axis and a "
                           r"bag axis.*combiner='sum'.*`ids\[None\]`"):
            layer_cls(5, 2, combiner="sum")(rank1)
    with pytest.raises(ValueError, match="batch axis and a bag axis"):
        layer_cls(5, 2, combiner="mean")(keras.Input((), dtype="int32"))
    with pytest.raises(ValueError, match="not to `reverse=True`"):
        layer_cls(5, 2)(np.ones((1, 2), "float32"), reverse=True,
                        bag_weights=np.ones((1, 2)))
    with pytest.raises(ValueError, match="`reverse` must be True or False"):
        layer_cls(5, 2)(np.ones((1, 2), "float32"), reverse=1)
    # reverse=True takes vectors of size output_dim, not ids.
    message = r"With `reverse=True`.*output_dim=2.*Received inputs of shape"
    with pytest.raises(ValueError, match=message + r" \(1, 3\)"):
        layer_cls(5, 2)(np.ones((1, 3), "float32"), reverse=True)
    with pytest.raises(ValueError, match=message + r".*int32"):
        layer_cls(5, 2)(np.ones((1, 2), "int32"), reverse=True)
    with pytest.raises(ValueError, match=message):
        layer_cls(5, 2)(keras.Input((7,)), reverse=True)


def test_sparse_table_cannot_be_the_tied_projection():
    layer = kel.LookupEmbedding(5, 2, sparse=True, name="tokens")
    with pytest.raises(ValueError, match="'tokens' has sparse=True, but "
                       "`reverse=True` reads every row"):
        layer(np.ones((1, 2), "float32"), reverse=True)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_twins_agree(policy):
    # Rows of norm about 300: their float16 sum of squares would overflow.
    table = varied_table() * 150.0
    ids = np.array([[1, 8, 8, 0, 5], [2, 7, 3, 6, 4]], "int32")
    weights = np.random.default_rng(5).uniform(0.5, 2.0, ids.shape)
    weights = weights.astype("float32")
    atol = 0.5 if policy == "mixed_float16" else 4.0
    for kwargs, call, expected in [
        ({"max_norm": 1.0}, {}, np_clip(table[ids], 1.0)),
        ({"combiner": "sqrtn", "max_norm": 2.0, "padding_idx": 4},
         {"bag_weights": weights},
         np_bags(table, ids, "sqrtn", weights, max_norm=2.0, padding_idx=4)),
        ({"combiner": "mean"}, {}, np_bags(table, ids, "mean")),
    ]:
        lookup, dense = twins(table, dtype=policy, **kwargs)
        for layer in (lookup, dense):
            out = layer(ids, **call)
            assert keras.backend.standardize_dtype(out.dtype) == \
                policy.split("_")[1]
            got = to_numpy(out).astype("float32")
            assert np.isfinite(got).all()
            np.testing.assert_allclose(got, expected, rtol=2e-2,
                                       atol=atol * 1e-2)
    lookup, dense = twins(table, dtype=policy, max_norm=1.0, padding_idx=2)
    x = np.random.default_rng(6).normal(size=(3, 4)).astype("float32")
    expected = x @ (np_clip(table, 1.0) * (np.arange(9) != 2)[:, None]).T
    for layer in (lookup, dense):
        got = to_numpy(layer(x, reverse=True)).astype("float32")
        np.testing.assert_allclose(got, expected, rtol=2e-2, atol=5e-2)


@pytest.mark.skipif(BACKEND == "tensorflow",
                    reason="TensorFlow has ragged tensors (test_ragged_bags)")
def test_keras_refuses_ragged_inputs_elsewhere():
    # Ragged tensors are TensorFlow's: Keras refuses them elsewhere.
    with pytest.raises(ValueError, match="ragged"):
        keras.Input((None,), dtype="int32", ragged=True)


@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="only TensorFlow has ragged tensors")
def test_ragged_bags():
    table = random_table(6, 3)
    import tensorflow as tf

    ragged = tf.ragged.constant([[1, 2], [], [3, 3, 5]], dtype="int32")
    ragged_weights = tf.ragged.constant([[1.0, 2.0], [], [0.5, 1.0, 2.0]])
    dense_ids = np.array([[1, 2, 0], [0, 0, 0], [3, 3, 5]], "int32")
    dense_weights = np.array([[1.0, 2.0, 0.0], [0.0] * 3, [0.5, 1.0, 2.0]],
                             "float32")
    expected = np_bags(table, dense_ids, "mean", dense_weights)
    counts = np_bags(table, dense_ids, "mean", (dense_weights > 0) * 1.0)
    for layer in twins(table, combiner="mean"):
        assert_close(layer(ragged, bag_weights=ragged_weights), expected)
        assert_close(layer(ragged), counts)
    # Without a combiner, ragged ids give ragged rows, as in Keras, on both
    # twins; invalid ids keep their contract.
    for layer_cls in (kel.LookupEmbedding, kel.OneHotDense):
        rows = layer_cls(6, 3, weights=table)(ragged)
        assert isinstance(rows, tf.RaggedTensor)
        assert rows.row_lengths().numpy().tolist() == [2, 0, 3]
        assert_close(rows.flat_values, table[[1, 2, 3, 3, 5]])
        bad = tf.ragged.constant([[1, 7], [-1]], dtype="int32")
        with pytest.raises(ValueError, match="invalid id: 7"):
            layer_cls(6, 3, weights=table)(bad)
        zeros = layer_cls(6, 3, weights=table, invalid_ids="zeros")(bad)
        assert_close(zeros.flat_values, [table[1], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="must be None or a tf.RaggedTensor"):
        kel.LookupEmbedding(6, 3, combiner="sum")(ragged,
                                                  bag_weights=dense_weights)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="`bag_weights` must have the row lengths"):
        kel.LookupEmbedding(6, 3, combiner="sum")(
            ragged, bag_weights=tf.ragged.constant([[1.0], [2.0], [1.0] * 4]))
    # In a model, trained from a tf.data pipeline of ragged bags: both twins
    # take the same steps.
    trained = []
    for layer_cls in (kel.LookupEmbedding, kel.OneHotDense):
        inputs = keras.Input((None,), dtype="int32", ragged=True)
        layer = layer_cls(6, 3, weights=table, combiner="sum",
                          padding_idx=2)
        model = keras.Model(inputs, layer(inputs))
        no_padding = (dense_weights > 0) * (dense_ids != 2) * 1.0
        assert_close(model(ragged),
                     np_bags(table, dense_ids, "sum", no_padding))
        model.compile("adam", "mse")
        data = tf.data.Dataset.from_tensor_slices(
            (ragged, np.ones((3, 3), "float32"))
        ).batch(2)
        model.fit(data, epochs=2, shuffle=False, verbose=0)
        trained.append(to_numpy(layer.weights[0]))
        assert not np.allclose(trained[-1][[1, 3, 5]], table[[1, 3, 5]])
        assert_equal(trained[-1][[0, 2, 4]], table[[0, 2, 4]])
    np.testing.assert_allclose(trained[0], trained[1], atol=1e-5)


# reverse=True


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="plain"),
        pytest.param({"padding_idx": 2}, id="padding_idx"),
        pytest.param({"max_norm": 1.0}, id="max_norm"),
    ],
)
def test_reverse_is_the_tied_projection(kwargs):
    table = varied_table()
    x = random_table(10, 4, 5).reshape(2, 5, 4)
    lookup, dense = twins(table, **kwargs)
    # A bias and an activation belong to the forward direction only.
    biased = kel.OneHotDense(9, 4, use_bias=True, activation="relu",
                             weights=[table, np.ones(4)], **kwargs)
    effective = table.copy()
    if "padding_idx" in kwargs:
        effective[2] = 0.0
    if "max_norm" in kwargs:
        effective = np_clip(effective, kwargs["max_norm"])
    # Row i of the table used in reverse is what id i gives forward.
    assert_close(lookup(np.arange(9)), effective)
    expected = x @ effective.T
    for layer in (lookup, dense, biased):
        logits = layer(x, reverse=True)
        assert tuple(logits.shape) == (2, 5, 9)
        assert_close(logits, expected, atol=1e-5)
    cotangent = random_table(10, 9, 6).reshape(2, 5, 9)
    # d/d(effective row i) = sum over positions of cotangent[i] * x.
    per_row = cotangent.reshape(-1, 9).T @ x.reshape(-1, 4)
    if "padding_idx" in kwargs:
        per_row[2] = 0.0  # the padding row gets no gradient
    if "max_norm" in kwargs:
        per_row = np_clip_gradient(table, np.arange(9), per_row,
                                   kwargs["max_norm"])
    assert_twin_gradients(lookup, dense, x, cotangent, per_row,
                          reverse=True)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_reverse_passes_the_mask_through(layer_cls):
    # ids -> embedding (mask_zero) -> Dense -> same layer, reversed ->
    # mean pooling, which must see the ids' mask, not one computed from
    # float vectors.
    table = random_table(6, 3)
    inputs = keras.Input((4,), dtype="int32")
    tied = layer_cls(6, 3, mask_zero=True, weights=table)
    hidden = keras.layers.Dense(3, use_bias=False)
    logits = tied(hidden(tied(inputs)), reverse=True)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(logits))
    hidden.set_weights([np.eye(3, dtype="float32")])
    ids = np.array([[1, 2, 0, 0], [5, 4, 3, 0]], "int32")
    per_position = table[ids] @ table.T
    expected = np.stack([per_position[0, :2].mean(0),
                         per_position[1, :3].mean(0)])
    assert_close(model.predict(ids, verbose=0), expected)
    # A mask from elsewhere goes through a layer without mask_zero too
    # (and Keras does not warn that it is dropped).
    other = kel.LookupEmbedding(6, 3, mask_zero=True, weights=table)
    plain = layer_cls(6, 3, weights=table)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(
        plain(other(inputs), reverse=True)))
    assert_close(model.predict(ids, verbose=0), expected)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_tied_language_model(layer_cls, tmp_path):
    vocabulary, dim = 20, 8
    inputs = keras.Input((6,), dtype="int32")
    tied = layer_cls(vocabulary, dim, mask_zero=True, padding_idx=0)
    hidden = keras.layers.Dense(dim, activation="tanh")(tied(inputs))
    model = keras.Model(inputs, tied(hidden, reverse=True))
    assert model.output_shape == (None, 6, vocabulary)
    # The table counts once, although the layer is called twice.
    expected = vocabulary * dim + dim * dim + dim
    assert model.count_params() == expected == 232
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    summary = "\n".join(lines)
    assert f"Total params: {expected:,}" in summary
    # One row for the layer, with the table's 160 parameters.
    assert summary.count(f"({type(tied).__name__})") == 1
    assert " 160 " in summary
    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocabulary, (16, 7)).astype("int32")
    ids[:, -2:] = 0  # padding at the end
    initial = to_numpy(tied.weights[0])
    model.compile(keras.optimizers.Adam(0.05),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ids[:, :-1], ids[:, 1:], batch_size=8, epochs=3,
                        shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    trained = to_numpy(tied.weights[0])
    assert not np.allclose(trained[1:], initial[1:], atol=1e-3)
    assert_equal(trained[0], initial[0])  # padding_idx never trains
    path = str(tmp_path / "lm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.count_params() == expected
    assert_close(loaded.predict(ids[:, :-1], verbose=0),
                 model.predict(ids[:, :-1], verbose=0))


# Training: both layers take the same steps.


def _feature_model(layer_cls, feature, table):
    if feature == "combiner":
        inputs = keras.Input((5,), dtype="int32")
        layer = layer_cls(9, 4, weights=table, combiner="mean",
                          padding_idx=0, max_norm=1.0)
        outputs = keras.layers.Dense(2)(layer(inputs))
    elif feature == "weighted_bags":
        ids = keras.Input((5,), dtype="int32")
        weights = keras.Input((5,))
        inputs = [ids, weights]
        layer = layer_cls(9, 4, weights=table, combiner="sqrtn",
                          mask_zero=True, max_norm=1.0)
        outputs = keras.layers.Dense(2)(layer(ids, bag_weights=weights))
    elif feature == "max_norm":
        inputs = keras.Input((5,), dtype="int32")
        layer = layer_cls(9, 4, weights=table, max_norm=1.0, norm_type=1.0)
        outputs = keras.layers.Dense(2)(
            keras.layers.GlobalAveragePooling1D()(layer(inputs))
        )
    else:
        inputs = keras.Input((4,))
        layer = layer_cls(9, 4, weights=table, padding_idx=3)
        outputs = layer(keras.layers.Dense(4)(inputs), reverse=True)
    model = keras.Model(inputs, outputs)
    rest = [w for w in model.weights if w is not layer.weights[0]]
    for i, weight in enumerate(rest):
        weight.assign(random_table(*weight.shape, seed=10 + i)
                      if len(weight.shape) == 2 else np.zeros(weight.shape))
    return model, layer


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("feature", ["max_norm", "combiner",
                                     "weighted_bags", "reverse"])
def test_training_parity(feature, optimizer):
    table = varied_table()
    rng = np.random.default_rng(4)
    if feature == "weighted_bags":
        x = [rng.integers(0, 9, (32, 5)).astype("int32"),
             rng.uniform(0.0, 2.0, (32, 5)).astype("float32")]
        y = rng.normal(size=(32, 2)).astype("float32")
        loss = "mse"
    elif feature == "reverse":
        x = rng.normal(size=(32, 4)).astype("float32")
        y = rng.integers(0, 9, (32,))
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        x = rng.integers(0, 9, (32, 5)).astype("int32")
        y = rng.normal(size=(32, 2)).astype("float32")
        loss = "mse"
    trained = []
    for layer_cls in (kel.LookupEmbedding, kel.OneHotDense):
        model, layer = _feature_model(layer_cls, feature, table)
        model.compile(optimizer, loss)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        trained.append([to_numpy(w) for w in model.weights])
        weights = to_numpy(layer.weights[0])
        assert not np.allclose(weights, table, atol=1e-4)
        if feature in ("combiner", "weighted_bags"):
            assert_equal(weights[0], table[0])  # padding_idx=0 / mask_zero
        if feature == "reverse":
            assert_equal(weights[3], table[3])  # padding_idx=3
    for lookup_weight, dense_weight in zip(*trained):
        np.testing.assert_allclose(lookup_weight, dense_weight, atol=1e-5)


# Composition with padding_idx, mask_zero and invalid ids.


@pytest.mark.parametrize("combiner", COMBINERS)
def test_padding_idx_and_mask_zero_with_combiner(combiner):
    table = varied_table()
    ids = np.array([[0, 4, 4, 7, 6], [2, 2, 0, 5, 2], [8, 1, 2, 0, 0],
                    [1, 1, 2, 3, 4]], "int32")
    weights = np.random.default_rng(7).uniform(0.5, 2.0, (4, 5))
    weights = weights.astype("float32")
    cotangent = np.ones((4, 4), "float32")
    for kwargs in ({"padding_idx": 2}, {"mask_zero": True},
                   {"padding_idx": 2, "mask_zero": True, "max_norm": 1.0}):
        lookup, dense = twins(table, combiner=combiner, **kwargs)
        expected = np_bags(table, ids, combiner, weights, **kwargs)
        assert_close(lookup(ids, bag_weights=weights), expected)
        assert_close(dense(ids, bag_weights=weights), expected)
        gradient = assert_twin_gradients(lookup, dense, ids, cotangent,
                                         bag_weights=weights)
        if "padding_idx" in kwargs:
            assert_equal(gradient[2], np.zeros(4))
        if "mask_zero" in kwargs:
            assert_equal(gradient[0], np.zeros(4))
    if combiner == "mean":
        # The mean counts only the ids that are neither padding nor masked.
        lookup, _ = twins(table, combiner="mean", padding_idx=2,
                          mask_zero=True)
        assert_close(lookup(ids)[1], table[5])
        assert_close(lookup(ids)[2], (table[8] + table[1]) / 2)


def test_invalid_ids_in_bags_count_nowhere():
    table = random_table(4, 2)
    ids = np.array([[1, -1, 7, 2], [-5, 9, 4, 4]])
    for layer in twins(table, combiner="mean", invalid_ids="zeros"):
        assert_close(layer(ids), [(table[1] + table[2]) / 2, [0.0, 0.0]])


# Arguments: validation, config, files, conversions.


BAD_VALUES = [
    pytest.param("max_norm", [0, -1.0, "1", True, float("inf")],
                 r"`max_norm` must be None or a positive number. "
                 r"Received: max_norm=", id="max_norm"),
    pytest.param("norm_type", [0, -2.0, None, True, "2", float("nan")],
                 r"`norm_type` must be a positive number .*"
                 r"Received: norm_type=", id="norm_type"),
    pytest.param("combiner", ["max", "SUM", 1, ""],
                 r"`combiner` must be None or one of 'sum', 'mean', "
                 r"'sqrtn'. Received: combiner=", id="combiner"),
]


@pytest.mark.parametrize("argument,values,message", BAD_VALUES)
def test_bad_arguments(argument, values, message):
    for layer_cls in (kel.LookupEmbedding, kel.OneHotDense):
        for value in values:
            with pytest.raises(ValueError, match=message):
                layer_cls(3, 2, **{argument: value})


FEATURES = {"max_norm": 1.0, "norm_type": 2.0, "combiner": "sqrtn"}


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_config_file_and_conversion_keep_the_arguments(layer_cls, tmp_path):
    table = varied_table()
    layer = layer_cls(9, 4, weights=table, padding_idx=2, **FEATURES)
    config = layer.get_config()
    assert {k: config[k] for k in FEATURES} == FEATURES
    assert layer_cls.from_config(config).get_config() == config
    model = keras.Sequential([keras.Input((3,), dtype="int32"), layer])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.layers[0].get_config() == config
    ids = np.array([[2, 8, 7], [1, 1, 6]], "int32")
    expected = np_bags(table, ids, "sqrtn", padding_idx=2, max_norm=1.0)
    assert not np.allclose(expected, np_bags(table, ids, "sqrtn",
                                             padding_idx=2))
    assert_close(loaded.predict(ids, verbose=0), expected)
    twin = (kel.OneHotDense.from_embedding(layer)
            if layer_cls is kel.LookupEmbedding
            else kel.LookupEmbedding.from_one_hot_dense(layer))
    assert {k: twin.get_config()[k] for k in FEATURES} == FEATURES
    assert_close(twin(ids), layer(ids))


def test_pretrained_embedding_takes_the_arguments(tmp_path):
    table = varied_table(4, 3)
    layer = kel.PretrainedEmbedding(4, 3, vocabulary=["", "a", "b", "c"],
                                    weights=table, max_norm=1.0,
                                    combiner="mean", mask_zero=True)
    assert layer.get_config()["combiner"] == "mean"
    ids = np.array([[1, 2, 0], [3, 0, 0]], "int32")
    expected = np_bags(table, ids, "mean", max_norm=1.0,
                       mask_zero=True)
    assert_close(layer(ids), expected)
    model = keras.Sequential([keras.Input((3,), dtype="int32"), layer])
    model.save(tmp_path / "p.keras")
    loaded = keras.saving.load_model(tmp_path / "p.keras")
    assert loaded.layers[0].get_config()["max_norm"] == 1.0
    assert_close(loaded.predict(ids, verbose=0), expected)
    assert_close(layer(np.ones((2, 3), "float32"), reverse=True),
                 np.ones((2, 3)) @ np_clip(table, 1.0).T)


def test_bags_without_gathered_rows_on_torch():
    # PyTorch sums bags with `embedding_bag`: no (batch, bag, dim) rows.
    # Other backends gather (keras.ops has no fused bag op); `max_norm`
    # needs each row's norm, so it gathers everywhere.
    table = random_table(9, 4)
    ids = np.array([[1, 2, 2, -1], [0, 8, 3, 3]], "int64")
    weights = np.array([[1.0, 0.5, 2.0, 1.0], [0.0, 1.0, 1.0, 3.0]],
                       "float32")
    for max_norm in (None, 1.0):
        layer = kel.LookupEmbedding(9, 4, weights=table, combiner="sqrtn",
                                    invalid_ids="zeros", padding_idx=8,
                                    max_norm=max_norm)
        out = layer(ids, bag_weights=weights)
        assert_close(out, np_bags(table, ids, "sqrtn", weights,
                                  max_norm=max_norm, padding_idx=8))
        if BACKEND != "torch":
            from keras_embedlab import backend

            assert backend.fused_bag_sum(table, ids, weights) is None
            continue
        nodes, seen, stack = set(), set(), [out.grad_fn]
        while stack:  # every node of the autograd graph
            node = stack.pop()
            if node is not None and id(node) not in seen:
                seen.add(id(node))
                nodes.add(type(node).__name__)
                stack.extend(n for n, _ in node.next_functions)
        fused = any(n.startswith("EmbeddingBag") for n in nodes)
        assert fused == (max_norm is None), sorted(nodes)
