"""`HashedEmbedding` and `QREmbedding`: ids without a vocabulary."""

import math
import os

import keras
import numpy as np
import pytest
from helpers import assert_close, to_numpy
from thinc.api import HashEmbed

import keras_embedlab as kel
from keras_embedlab.backend import keeps_int64

IDS = np.array([[0, 5, 2**31, 2**32 + 5], [2**63 - 1, -1, -2**40, 77]],
               np.int64)
# On JAX without x64 the layers' 64-bit path is int32 words (id_halves).
HALVES = not keeps_int64()
NARROWS = pytest.mark.skipif(
    keeps_int64(), reason="only JAX without x64 narrows int64 ids")


def _inputs(ids):
    return kel.split_ids(ids) if HALVES else ids


def _hashed(*args, **kwargs):
    return kel.HashedEmbedding(*args, id_halves=HALVES, **kwargs)


def _reference(table, ids, seed, num_hashes=4, importance=None):
    """NumPy: the (weighted) sum of each id's bucket rows."""
    buckets = kel.hash_ids(ids, table.shape[0], seed, num_hashes)
    rows = table[buckets]  # ids + (hashes, dim)
    if importance is None:
        return rows.sum(-2)
    index = kel.hash_ids(ids, importance.shape[0], seed + 1, 1)[..., 0]
    return (rows * importance[index][..., None]).sum(-2)


def _thinc_table(seed):
    model = HashEmbed(6, 50, seed=seed)
    model.initialize()
    return model, model.get_param("E")


def test_hashed_embedding_equals_thinc_hashembed():
    model, table = _thinc_table(seed=7)
    expected = model.predict(IDS.reshape(-1).view(np.uint64)).reshape(
        IDS.shape + (6,))
    layer = _hashed(50, 6, seed=7, weights=[table])
    assert_close(layer(_inputs(IDS)), expected, atol=1e-6)
    # Compiled, through Keras's trainer (XLA / jax.jit / torch.compile is
    # tested on hash_ids alone), with a declared integer input.
    x = _inputs(IDS)
    inputs = keras.Input(x.shape[1:], dtype="int32" if HALVES else "int64")
    keras_model = keras.Model(inputs, layer(inputs))
    np.testing.assert_allclose(keras_model.predict(x, verbose=0), expected,
                               rtol=0, atol=1e-6)


def test_importance_weights_and_fewer_hashes():
    table = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    importance = np.random.default_rng(1).normal(size=(11, 2)).astype(
        "float32")
    layer = _hashed(40, 3, num_hashes=2, seed=2**32 - 1,
                    importance_buckets=11, weights=[table, importance])
    assert layer.importance.shape == (11, 2)
    # Seed 2**32 - 1: the importance hash's seed wraps to 0.
    buckets = kel.hash_ids(IDS, 40, 2**32 - 1, 2)
    index = kel.hash_ids(IDS, 11, 0, 1)[..., 0]
    expected = (table[buckets] * importance[index][..., None]).sum(-2)
    assert_close(layer(_inputs(IDS)), expected)
    # Initialised to ones: the plain sum.
    fresh = _hashed(40, 3, num_hashes=2, seed=5, importance_buckets=11,
                    weights=[table])
    assert_close(fresh(_inputs(IDS)), _reference(table, IDS, 5, 2))


def test_mask_zero_bags_and_max_norm():
    table = np.random.default_rng(2).normal(size=(30, 4)).astype("float32")
    ids = np.array([[0, 3, 2**33], [0, 0, 0]], np.int64)
    layer = _hashed(30, 4, seed=1, mask_zero=True, weights=[table])
    assert to_numpy(layer.compute_mask(_inputs(ids))).tolist() == [
        [False, True, True], [False, False, False]]
    vectors = _reference(table, ids, 1)
    bag = _hashed(30, 4, seed=1, mask_zero=True, combiner="mean",
                  weights=[table])
    expected = np.stack([vectors[0, 1:].mean(0), np.zeros(4)])
    assert_close(bag(_inputs(ids)), expected)
    clipped = _hashed(30, 4, seed=1, max_norm=0.5, weights=[table])
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    assert_close(clipped(_inputs(ids)),
                 vectors * np.minimum(1, 0.5 / norms), atol=1e-5)


def _dot_loss(y_true, y_pred):
    return keras.ops.sum(y_true * y_pred, axis=(1, 2))


def test_sparse_fit_moves_only_hashed_rows():
    # SparseSGD(1.0) with sum(cotangent * output): each bucket row moves by
    # minus the sum of the cotangents of its (id, hash) pairs / batch.
    table = np.random.default_rng(3).normal(size=(64, 4)).astype("float32")
    x = _inputs(IDS)
    inputs = keras.Input(x.shape[1:], dtype="int32" if HALVES else "int64")
    layer = _hashed(64, 4, seed=3, sparse=True, weights=[table])
    model = kel.RowSparseModel(inputs, layer(inputs))
    model.compile(kel.SparseSGD(1.0), _dot_loss)
    cotangent = np.random.default_rng(4).normal(size=IDS.shape + (4,))
    model.fit(x, cotangent.astype("float32"), batch_size=2, epochs=1,
              verbose=0)
    expected = table.copy()
    buckets = kel.hash_ids(IDS, 64, 3)
    for index in np.ndindex(buckets.shape):
        expected[buckets[index]] -= cotangent[index[:-1]] / 2
    got = to_numpy(layer.embeddings)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    untouched = np.setdiff1d(np.arange(64), buckets)
    assert untouched.size and np.array_equal(got[untouched], table[untouched])


@pytest.mark.parametrize("kwargs", [
    pytest.param({}, id="plain"),
    pytest.param({"importance_buckets": 5, "mask_zero": True,
                  "num_hashes": 3, "seed": 9}, id="importance"),
])
def test_hashed_save_load(tmp_path, kwargs):
    x = _inputs(IDS)
    inputs = keras.Input(x.shape[1:], dtype="int32" if HALVES else "int64")
    layer = _hashed(20, 3, **kwargs)
    model = keras.Model(inputs, layer(inputs))
    path = os.path.join(tmp_path, "hashed.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    twin = loaded.layers[-1]
    assert type(twin) is kel.HashedEmbedding
    assert twin.get_config() == layer.get_config()
    assert_close(loaded(x), model(x), atol=0)


def test_hashed_quantize_and_lora():
    table = np.random.default_rng(5).normal(size=(20, 8)).astype("float32")
    x = _inputs(IDS)
    layer = _hashed(20, 8, seed=4, weights=[table])
    expected = to_numpy(layer(x))
    layer.enable_lora(2)
    assert_close(layer(x), expected, atol=1e-6)  # LoRA's B starts at zero
    quantized = _hashed(20, 8, seed=4, weights=[table])
    quantized.quantize("int8")
    assert_close(quantized(x), expected, atol=0.05)
    assert keras.backend.standardize_dtype(
        quantized._embeddings.dtype) == "int8"


def test_hashed_int4_with_importance_saves_and_loads(tmp_path):
    table = np.random.default_rng(6).normal(size=(20, 8)).astype("float32")
    x = _inputs(IDS)
    layer = _hashed(20, 8, seed=4, importance_buckets=3, weights=[table])
    expected = to_numpy(layer(x))
    layer.quantize("int4")
    assert_close(layer(x), expected, atol=0.5)
    inputs = keras.Input(x.shape[1:], dtype="int32" if HALVES else "int64")
    model = keras.Model(inputs, layer(inputs))
    path = os.path.join(tmp_path, "int4.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[-1].quantization_mode == "int4"
    assert_close(loaded(x), model(x), atol=0)


@pytest.mark.parametrize("kwargs,match", [
    pytest.param({"invalid_ids": "zeros"}, "has no `invalid_ids`",
                 id="invalid_ids"),
    pytest.param({"padding_idx": 0}, "has no `padding_idx`",
                 id="padding_idx"),
    pytest.param({"importance_buckets": 0}, "`importance_buckets` must be",
                 id="importance-0"),
    pytest.param({"num_hashes": 5}, "`num_hashes` must be", id="hashes-5"),
    pytest.param({"seed": -1}, "`seed` must be", id="seed"),
])
def test_hashed_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kel.HashedEmbedding(10, 2, **kwargs)


def test_hashed_refuses_reverse_and_float_inputs():
    layer = _hashed(10, 2)
    layer.build()
    with pytest.raises(ValueError, match="reverse=True"):
        layer(keras.ops.ones((1, 2)), reverse=True)
    with pytest.raises(TypeError, match="dtype='int64'"):
        layer(keras.KerasTensor((None, 3), dtype="float32"))


@NARROWS
def test_jax_without_x64_never_narrows_silently():
    big = np.array([[2**31 + 7, 3]], np.int64)
    with pytest.warns(UserWarning, match="id_halves=True"):
        layer = kel.HashedEmbedding(10, 2)
        layer.build()
    with pytest.raises(ValueError, match="narrows int64 to int32"):
        layer(big)  # eager NumPy ids, checked on the host
    # Ids that fit in int32 pass, with their own buckets.
    small = np.array([[2**31 - 1, -2**31]], np.int64)
    assert_close(layer(small), _reference(
        to_numpy(layer.embeddings), small, 0))
    with pytest.raises(ValueError, match="narrows int64 to int32"):
        layer(keras.Input((2,), dtype="int64"))  # a model's int64 input
    # The documented path: int32 words keep every bit, under the trainer.
    words = kel.HashedEmbedding(10, 2, id_halves=True)
    inputs = keras.Input((2, 2), dtype="int32")
    model = keras.Model(inputs, words(inputs))
    expected = _reference(to_numpy(words.embeddings), big, 0)
    np.testing.assert_allclose(model.predict(kel.split_ids(big), verbose=0),
                               expected, rtol=0, atol=1e-6)


# QREmbedding


def _qr_reference(layer, ids, operation, combiner=None):
    """DLRM's definition in NumPy, from the layer's two tables."""
    q = to_numpy(layer.quotient.embeddings)[ids // layer.num_collisions]
    r = to_numpy(layer.remainder.embeddings)[ids % layer.num_collisions]
    if combiner == "sum":
        q, r = q.sum(-2), r.sum(-2)
    elif combiner == "mean":
        q, r = q.mean(-2), r.mean(-2)
    if operation == "mult":
        return q * r
    if operation == "add":
        return q + r
    return np.concatenate([q, r], -1)


@pytest.mark.parametrize("operation", ["mult", "add", "concat"])
@pytest.mark.parametrize("combiner", [None, "sum", "mean"])
def test_qr_equals_numpy_definition(operation, combiner):
    ids = np.array([[0, 9, 10, 99], [57, 3, 98, 41]], np.int64)
    layer = kel.QREmbedding(100, 4, num_collisions=10, operation=operation,
                            combiner=combiner,
                            embeddings_initializer="normal")
    out = layer(ids)
    assert layer.quotient.input_dim == math.ceil(100 / 10) == 10
    assert layer.remainder.input_dim == 10
    dim = 8 if operation == "concat" else 4
    assert tuple(out.shape) == (ids.shape if combiner is None
                                else ids.shape[:1]) + (dim,)
    assert_close(out, _qr_reference(layer, ids, operation, combiner))


def test_qr_uneven_tables_invalid_ids_and_mask():
    layer = kel.QREmbedding(23, 3, num_collisions=5, invalid_ids="zeros",
                            mask_zero=True, embeddings_initializer="normal")
    ids = np.array([0, 22, 23, -1, 7], np.int64)
    out = to_numpy(layer(ids))
    assert layer.quotient.input_dim == 5  # ceil(23 / 5)
    assert_close(out[[0, 1, 4]], _qr_reference(layer, ids[[0, 1, 4]], "mult"))
    assert np.array_equal(out[2:4], np.zeros((2, 3)))
    assert to_numpy(layer.compute_mask(ids)).tolist() == [
        False, True, True, True, True]
    with pytest.raises(ValueError, match="invalid id: 23"):
        kel.QREmbedding(23, 3, num_collisions=5)(np.array([23]))


def test_qr_save_load(tmp_path):
    inputs = keras.Input((3,), dtype="int32")
    layer = kel.QREmbedding(50, 4, num_collisions=7, operation="concat",
                            combiner="sum")
    model = keras.Model(inputs, layer(inputs))
    path = os.path.join(tmp_path, "qr.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[-1]) is kel.QREmbedding
    assert loaded.layers[-1].get_config() == layer.get_config()
    ids = np.array([[0, 49, 13], [7, 7, 8]], np.int32)
    assert_close(loaded(ids), model(ids), atol=0)


@pytest.mark.parametrize("kwargs,match", [
    pytest.param({"num_collisions": 0}, "`num_collisions` must be a "
                 "positive integer", id="collisions-0"),
    pytest.param({"num_collisions": 11}, "at most `input_dim`",
                 id="collisions-over"),
    pytest.param({"num_collisions": 2, "operation": "max"},
                 "`operation` must be one of", id="operation"),
])
def test_qr_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kel.QREmbedding(10, 2, **kwargs)
