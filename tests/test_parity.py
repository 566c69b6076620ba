"""LookupEmbedding and OneHotDense agree, and LookupEmbedding is a drop-in."""

import keras
import numpy as np
import pytest
from helpers import (
    ID_CASES,
    assert_close,
    assert_equal,
    random_ids,
    random_table,
    to_numpy,
)

import keras_embedlab as kel
from keras_embedlab.testing import layer_gradients


@pytest.mark.parametrize("shape,dtype", ID_CASES)
def test_outputs_and_gradients_agree(shape, dtype):
    table = random_table(13, 6)
    ids = random_ids(shape, dtype, 13)
    lookup = kel.LookupEmbedding(13, 6, weights=table)
    dense = kel.OneHotDense(13, 6, weights=table)
    assert_equal(lookup(ids), dense(ids))

    cotangent = np.random.default_rng(1).normal(size=shape + (6,))
    cotangent = cotangent.astype("float32")
    (lookup_grad,) = layer_gradients(lookup, ids, cotangent)
    (dense_grad,) = layer_gradients(dense, ids, cotangent)
    # Reference: scatter-add of the cotangent rows into a zero table.
    expected = np.zeros_like(table)
    np.add.at(expected, ids.reshape(-1), cotangent.reshape(-1, 6))
    np.testing.assert_allclose(lookup_grad, expected, atol=1e-5)
    np.testing.assert_allclose(dense_grad, expected, atol=1e-5)
    np.testing.assert_allclose(lookup_grad, dense_grad, atol=1e-5)
    untouched = np.setdiff1d(np.arange(13), ids)
    assert not lookup_grad[untouched].any()


def flat_model(embedding_layer, ids_shape):
    inputs = keras.Input(ids_shape, dtype="int32")
    x = embedding_layer(inputs)
    if ids_shape:
        x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(x))


@pytest.mark.parametrize("shape,dtype", ID_CASES)
@pytest.mark.parametrize(
    "make_optimizer",
    [pytest.param(lambda: keras.optimizers.SGD(0.05), id="sgd"),
     pytest.param(lambda: keras.optimizers.Adam(0.01), id="adam")],
)
def test_training_side_by_side_every_rank(shape, dtype, make_optimizer):
    # ids of shape (batch, *rest): rank 1 is one id per example.
    ids = random_ids((8,) + shape[1:], dtype, 20, seed=4)
    targets = np.random.default_rng(5).normal(size=(8, 1)).astype("float32")
    table = random_table(20, 3)
    lookup = flat_model(kel.LookupEmbedding(20, 3, weights=table),
                        shape[1:])
    dense = flat_model(kel.OneHotDense(20, 3, weights=table), shape[1:])
    dense.set_weights(lookup.get_weights())
    for model in (lookup, dense):
        model.compile(make_optimizer(), "mse")
        model.fit(ids, targets, batch_size=4, epochs=2, shuffle=False,
                  verbose=0)
    assert not np.allclose(lookup.get_weights()[0], table, atol=1e-4)
    for a, b in zip(lookup.get_weights(), dense.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def pooled_model(embedding_layer, seq_len):
    inputs = keras.Input((seq_len,), dtype="int32")
    x = embedding_layer(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(1, name="head")(x)
    return keras.Model(inputs, outputs)


def training_data(n=64, seq_len=5, input_dim=20, seed=3):
    rng = np.random.default_rng(seed)
    # Only ids < 15 occur, so rows 15..19 never get a gradient.
    ids = rng.integers(0, 15, size=(n, seq_len)).astype("int32")
    targets = rng.normal(size=(n, 1)).astype("float32")
    return ids, targets


@pytest.mark.parametrize(
    "make_optimizer",
    [
        pytest.param(lambda: keras.optimizers.SGD(0.5), id="sgd"),
        pytest.param(lambda: keras.optimizers.SGD(0.1, momentum=0.9),
                     id="sgd-momentum"),
        pytest.param(lambda: keras.optimizers.Adam(0.05), id="adam"),
    ],
)
def test_training_side_by_side(make_optimizer):
    ids, targets = training_data()
    table = random_table(20, 4)
    lookup_model = pooled_model(kel.LookupEmbedding(20, 4, weights=table), 5)
    dense_model = pooled_model(kel.OneHotDense(20, 4, weights=table), 5)
    dense_model.set_weights(lookup_model.get_weights())
    for model in (lookup_model, dense_model):
        model.compile(make_optimizer(), "mse")
        model.fit(ids, targets, batch_size=16, epochs=2, shuffle=False,
                  verbose=0)
    trained_table = to_numpy(lookup_model.layers[1].embeddings)
    assert not np.allclose(trained_table[:15], table[:15], atol=1e-3)
    for a, b in zip(lookup_model.get_weights(), dense_model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_adam_moves_rows_not_in_the_batch():
    # Dense gradients on every backend: Adam's momentum keeps moving rows
    # that were touched once, as plain Adam does. A batch that only uses
    # row 1 after a batch that used row 0 still changes row 0.
    table = random_table(5, 3)
    model = pooled_model(kel.LookupEmbedding(5, 3, weights=table), 2)
    model.compile(keras.optimizers.Adam(0.1), "mse")
    model.train_on_batch(np.array([[0, 0]]), np.ones((1, 1)))
    row0 = to_numpy(model.layers[1].embeddings)[0].copy()
    model.train_on_batch(np.array([[1, 1]]), np.ones((1, 1)))
    after = to_numpy(model.layers[1].embeddings)
    assert not np.allclose(after[0], row0)
    np.testing.assert_array_equal(after[2:], table[2:])


@pytest.mark.parametrize("shape,dtype", ID_CASES)
@pytest.mark.parametrize("mask_zero", [False, True])
def test_drop_in_for_keras_embedding(shape, dtype, mask_zero):
    ids = random_ids(shape, dtype, 9)
    keras_layer = keras.layers.Embedding(9, 4, mask_zero=mask_zero)
    ours = kel.LookupEmbedding(9, 4, mask_zero=mask_zero)
    keras_layer.build()
    ours.build()
    ours.set_weights(keras_layer.get_weights())
    assert_equal(ours(ids), keras_layer(ids))
    if mask_zero:
        assert_equal(ours.compute_mask(ids), keras_layer.compute_mask(ids))
    else:
        assert ours.compute_mask(ids) is keras_layer.compute_mask(ids) is None
    # ...and the other way round.
    table = random_table(9, 4, seed=7)
    ours.set_weights([table])
    keras_layer.set_weights(ours.get_weights())
    assert_equal(keras_layer(ids), table[ids])
    assert_equal(ours(ids), keras_layer(ids))


def test_same_signature_defaults_as_keras_embedding():
    import inspect

    ours = inspect.signature(kel.LookupEmbedding.__init__).parameters
    theirs = inspect.signature(keras.layers.Embedding.__init__).parameters
    for name in ("input_dim", "output_dim", "embeddings_initializer",
                 "embeddings_regularizer", "embeddings_constraint",
                 "mask_zero", "weights"):
        assert ours[name].default == theirs[name].default, name


def test_from_embedding_and_back():
    table = random_table(8, 3)
    ids = random_ids((3, 4), "int32", 8)
    for source in (
        keras.layers.Embedding(8, 3, weights=table, mask_zero=True),
        kel.LookupEmbedding(8, 3, weights=table, mask_zero=True,
                            invalid_ids="zeros", trainable=False),
    ):
        dense = kel.OneHotDense.from_embedding(source)
        assert isinstance(dense, kel.OneHotDense)
        assert not dense.use_bias
        assert dense.mask_zero
        assert dense.trainable == source.trainable
        assert dense.invalid_ids == getattr(source, "invalid_ids", "error")
        assert_equal(dense(ids), source(ids))
        back = kel.LookupEmbedding.from_one_hot_dense(dense)
        assert_equal(back(ids), source(ids))
        assert back.invalid_ids == dense.invalid_ids
    # The copy is a copy: training one does not move the other.
    dense.kernel.assign(np.zeros((8, 3), "float32"))
    assert_equal(back.embeddings, table)


def test_conversions_keep_initializer_regularizer_constraint():
    source = kel.LookupEmbedding(4, 2, embeddings_initializer="ones",
                                 embeddings_regularizer="l2",
                                 embeddings_constraint="non_neg")
    source.build()
    dense = kel.OneHotDense.from_embedding(source)
    config = dense.get_config()
    assert config["kernel_initializer"]["class_name"] == "Ones"
    assert config["kernel_regularizer"]["class_name"] == "L2"
    assert config["kernel_constraint"]["class_name"] == "NonNeg"
    back = kel.LookupEmbedding.from_one_hot_dense(dense).get_config()
    for key in ("initializer", "regularizer", "constraint"):
        assert back[f"embeddings_{key}"] == source.get_config()[
            f"embeddings_{key}"]


def test_from_one_hot_dense_rejects_inexact_conversions():
    with pytest.raises(ValueError, match="non-linear activation.*'relu'"):
        kel.LookupEmbedding.from_one_hot_dense(
            kel.OneHotDense(4, 2, activation="relu", weights=np.ones((4, 2)))
        )
    with_bias = kel.OneHotDense(4, 2, use_bias=True, bias_initializer="ones")
    with_bias.build()
    with pytest.raises(ValueError, match="non-zero bias"):
        kel.LookupEmbedding.from_one_hot_dense(with_bias)
    # A bias that is exactly zero changes nothing, so conversion is exact.
    zero_bias = kel.OneHotDense(4, 2, use_bias=True, weights=np.eye(4, 2))
    lookup = kel.LookupEmbedding.from_one_hot_dense(zero_bias)
    assert_close(lookup(np.array([1, 3])), zero_bias(np.array([1, 3])))


def test_conversion_needs_a_built_layer():
    with pytest.raises(ValueError, match="not built yet"):
        kel.OneHotDense.from_embedding(keras.layers.Embedding(4, 2))
    with pytest.raises(ValueError, match="not built yet"):
        kel.LookupEmbedding.from_one_hot_dense(kel.OneHotDense(4, 2))
