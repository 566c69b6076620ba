"""LoRA and int8/int4 tables: Keras parity, every read path, ids, saving.

Keras's own suites (`test_keras_suites.py`) check the Keras-facing API; this
file checks what they do not: equality with Keras's layers for the same
weights, the quantized table in bags, `max_norm`, `padding_idx` and
`reverse=True`, `OneHotDense` equal to `LookupEmbedding`, invalid ids, and
Keras-saved weights loading into ours.
"""

import os
import re

import keras
import numpy as np
import pytest
from helpers import (
    BACKEND,
    assert_close,
    assert_equal,
    invalid_id_error,
    random_table,
    to_numpy,
)

import keras_embedlab as kel

# `model.quantize` warns for each layer without weights (Keras's own).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Layer InputLayer does not have a `quantize`:UserWarning")
IDS = np.array([[0, 3, 7, 9], [9, 1, 1, 4]], "int32")
MODES = ["int8", "int4"]


def _config(mode, block_size):
    if mode == "int8":
        return None
    return keras.quantizers.Int4QuantizationConfig(block_size=block_size)


def _pair(mode, block_size=None, keras_cls=keras.layers.Embedding, **kwargs):
    """Keras's layer and ours with the same float table, both quantized."""
    theirs = keras_cls(10, 16, **kwargs)
    theirs.build()
    theirs.embeddings.assign(random_table(10, 16, seed=3))
    ours = kel.LookupEmbedding(10, 16, **kwargs)
    ours.build()
    ours.set_weights(theirs.get_weights())  # Untied: the reverse too.
    for layer in (theirs, ours):
        layer.quantize(mode, config=_config(mode, block_size))
    return theirs, ours


@pytest.mark.parametrize("mode,block_size", [("int8", None), ("int4", None),
                                             ("int4", 8)])
def test_quantized_lookup_equals_keras(mode, block_size):
    theirs, ours = _pair(mode, block_size)
    for name in ("_embeddings", "embeddings_scale"):
        assert_equal(getattr(ours, name), getattr(theirs, name))
    assert_close(ours(IDS), theirs(IDS), atol=1e-6)
    assert ours.dtype_policy.name == theirs.dtype_policy.name


# Keras's int8 reverse call on PyTorch (its own `x.T` on a 1-D scale).
@pytest.mark.filterwarnings("ignore:.*x.T. on tensors:UserWarning")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tie_weights", [True, False])
def test_quantized_reverse_equals_keras(mode, tie_weights):
    theirs, ours = _pair(mode, keras_cls=keras.layers.ReversibleEmbedding,
                         tie_weights=tie_weights)
    hidden = np.random.default_rng(0).normal(size=(3, 16)).astype("float32")
    assert_close(ours(hidden, reverse=True), theirs(hidden, reverse=True),
                 atol=1e-4)


def test_model_quantize_and_enable_lora_match_keras():
    table = random_table(10, 16, seed=4)

    def model(layer):
        inputs = keras.Input((4,), dtype="int32")
        return keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))

    theirs = model(keras.layers.Embedding(10, 16, weights=table))
    ours = model(kel.LookupEmbedding(10, 16, weights=table))
    ours.layers[2].set_weights(theirs.layers[2].get_weights())
    for m in (theirs, ours):
        m.layers[1].enable_lora(4)
        m.layers[1].lora_embeddings_a.assign(np.full((10, 4), 0.1))
        m.layers[1].lora_embeddings_b.assign(np.full((4, 16), 0.2))
    assert_close(ours.predict(IDS, verbose=0), theirs.predict(IDS, verbose=0),
                 atol=1e-5)
    for m in (theirs, ours):
        m.quantize("int8")
    assert ours.layers[1].quantization_mode == "int8"
    assert_close(ours.predict(IDS, verbose=0), theirs.predict(IDS, verbose=0),
                 atol=1e-5)


@pytest.mark.parametrize("mode,block_size", [("float", None), ("int8", None),
                                             ("int4", None), ("int4", 8)])
def test_keras_saved_variables_load_into_ours(mode, block_size):
    """Keras's per-layer saved variables (what `.keras` and `.weights.h5`
    files hold for a layer), LoRA merged, load into ours and back."""
    table = random_table(10, 16, seed=5)

    def layer(layer_cls):
        built = layer_cls(10, 16, weights=table)
        if mode != "float":
            built.quantize(mode, config=_config(mode, block_size))
        return built

    theirs = layer(keras.layers.Embedding)
    theirs.enable_lora(2)  # Merged into the saved table.
    theirs.lora_embeddings_b.assign(np.full((2, 16), 0.3))
    store = {}
    theirs.save_own_variables(store)
    ours = layer(kel.LookupEmbedding)
    ours.load_own_variables(store)
    plain = layer(keras.layers.Embedding)
    plain.load_own_variables(store)
    assert_close(ours(IDS), plain(IDS), atol=1e-6)
    atol = 1e-6 if mode == "float" else 0.3  # Requantized after merging.
    assert_close(ours(IDS), theirs(IDS), atol=atol)
    back = {}
    ours.save_own_variables(back)
    assert sorted(back) == sorted(store)
    for key in store:
        assert_equal(back[key], store[key])


def _dequantized_float_twin(quantized, **kwargs):
    """A float layer holding `quantized`'s dequantized table."""
    table = to_numpy(quantized._dense_table("float32"))
    return kel.LookupEmbedding(10, 16, weights=table, **kwargs), table


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kwargs", [
    {"combiner": "mean"}, {"combiner": "sqrtn", "max_norm": 1.0},
    {"max_norm": 0.5}, {"padding_idx": 3}, {"mask_zero": True},
])
def test_quantized_table_read_by_every_path(mode, kwargs):
    layer = kel.LookupEmbedding(10, 16, weights=random_table(10, 16, 6),
                                **kwargs)
    layer.quantize(mode)
    twin, table = _dequantized_float_twin(layer, **kwargs)
    assert_close(layer(IDS), twin(IDS), atol=1e-6)
    hidden = np.ones((2, 16), "float32")
    assert_close(layer(hidden, reverse=True), twin(hidden, reverse=True),
                 atol=2e-2)  # int8 also quantizes the inputs, as Keras.
    dense = kel.OneHotDense(10, 16, weights=random_table(10, 16, 6),
                            **kwargs)
    dense.quantize(mode)
    for name in ("kernel_scale",):
        assert_equal(getattr(dense, name), layer.embeddings_scale)
    # Same quantized table, same outputs: the twins stay equal.
    assert_close(dense(IDS), layer(IDS), atol=1e-6)


@pytest.mark.parametrize("layer_cls", [kel.LookupEmbedding, kel.OneHotDense])
def test_lora_trains_factors_only_and_merges_on_save(tmp_path, layer_cls):
    layer = layer_cls(10, 16, weights=random_table(10, 16, 7), padding_idx=2,
                      max_norm=2.0)
    inputs = keras.Input((4,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    before = to_numpy(layer._dense_table("float32")).copy()
    layer.enable_lora(3)
    assert [w.name for w in layer.trainable_weights][-2:] == [
        *layer._table_spec.lora]
    model.compile("sgd", "mse")
    model.fit(IDS, np.ones((2, 4, 16)), epochs=2, verbose=0)
    base = layer._table_variable()
    assert_equal(base, before)  # The table itself is frozen.
    after = model.predict(IDS, verbose=0)
    untrained = layer_cls(10, 16, weights=before, padding_idx=2, max_norm=2.0)
    assert np.abs(after - to_numpy(untrained(IDS))).max() > 1e-4
    path = os.path.join(tmp_path, "lora.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[1].lora_enabled
    assert_close(loaded.predict(IDS, verbose=0), after, atol=1e-5)
    with pytest.raises(ValueError, match="lora is already enabled"):
        layer.enable_lora(3)


def test_lora_refusals():
    with pytest.raises(ValueError, match="incompatible with embedding"):
        kel.LookupEmbedding(10, 4, embeddings_constraint="non_neg",
                            lora_rank=2).build()
    with pytest.raises(ValueError, match="sparse=True"):
        kel.LookupEmbedding(10, 4, sparse=True, lora_rank=2).build()
    with pytest.raises(ValueError, match="`lora_rank` must be a positive"):
        kel.LookupEmbedding(10, 4, lora_rank=0)


@pytest.mark.parametrize("mode", MODES)
def test_invalid_ids_in_quantized_mode(mode):
    layer = kel.LookupEmbedding(10, 16, weights=random_table(10, 16, 8))
    layer.quantize(mode)
    bad = np.array([[1, 10], [-1, 2]], "int32")
    with pytest.raises(ValueError, match="invalid id: 10"):
        layer(bad)
    with pytest.raises(ValueError, match="invalid id: 10"):
        layer(keras.ops.convert_to_tensor(bad))
    zeros = kel.LookupEmbedding(10, 16, weights=random_table(10, 16, 8),
                                invalid_ids="zeros")
    zeros.quantize(mode)
    out = to_numpy(zeros(bad))
    assert np.isfinite(out).all()
    assert_equal(out[0, 1], np.zeros(16))
    assert_equal(out[1, 0], np.zeros(16))
    assert_close(out[1, 1], to_numpy(zeros(np.array([2])))[0], atol=0)
    model = keras.Sequential([keras.Input((2,), dtype="int32"), layer])
    with pytest.raises(invalid_id_error()):
        model.predict(bad, verbose=0)


@pytest.mark.parametrize("mode", MODES)
def test_quantized_keras_round_trip_with_reverse_and_bags(tmp_path, mode):
    layer = kel.LookupEmbedding(10, 16, weights=random_table(10, 16, 9),
                                tie_weights=False, logit_soft_cap=3.0)
    bags = kel.LookupEmbedding(10, 16, combiner="mean", padding_idx=0)
    inputs = keras.Input((4,), dtype="int32")
    hidden = layer(inputs)
    logits = layer(hidden, reverse=True)
    model = keras.Model(inputs, [logits, bags(inputs)])
    model.quantize(mode)
    path = os.path.join(tmp_path, "q.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.predict(IDS, verbose=0),
                    loaded.predict(IDS, verbose=0)):
        assert_close(a, b, atol=0)
    assert np.abs(model.predict(IDS, verbose=0)[0]).max() <= 3.0


def test_input_length_warns_and_keras_configs_load():
    with pytest.warns(UserWarning, match="input_length"):
        kel.LookupEmbedding(13, 3, input_length=1000)
    config = keras.layers.Embedding(13, 3, lora_rank=2).get_config()
    layer = kel.LookupEmbedding.from_config(config)
    layer.build()
    assert layer.lora_enabled and layer.lora_rank == 2
    config = keras.layers.ReversibleEmbedding(
        13, 3, tie_weights=False, reverse_dtype="float32",
        logit_soft_cap=2.0).get_config()
    layer = kel.LookupEmbedding.from_config(config)
    assert (layer.tie_weights, layer.reverse_dtype,
            layer.logit_soft_cap) == (False, "float32", 2.0)


@pytest.mark.skipif(BACKEND == "torch", reason="PyTorch has no sparse ids")
def test_sparse_ids_are_densified_with_the_id_contract():
    layer = kel.LookupEmbedding(3, 2, weights=np.arange(6.0).reshape(3, 2))
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def sparse(values):
            return tf.SparseTensor([[0, 0], [1, 2]], values, (2, 3))
    else:
        from jax.experimental import sparse as jax_sparse

        def sparse(values):
            return jax_sparse.BCOO((np.array(values, "int32"),
                                    np.array([[0, 0], [1, 2]])), shape=(2, 3))
    out = to_numpy(layer(sparse([2, 1])))
    # Missing entries are id 0, as Keras's `take` makes them.
    assert_equal(out, [[[4, 5], [0, 1], [0, 1]], [[0, 1], [0, 1], [2, 3]]])
    with pytest.raises(ValueError, match="invalid id: 7"):
        layer(sparse([7, 1]))


@pytest.mark.parametrize("mode", ["float", "lora", *MODES])
def test_converters_keep_quantized_and_lora_tables(mode):
    layer = kel.LookupEmbedding(10, 16, weights=random_table(10, 16, 10))
    if mode == "lora":
        layer.enable_lora(2)
        layer.lora_embeddings_b.assign(np.full((2, 16), 0.5))
    elif mode != "float":
        layer.quantize(mode)
    dense = kel.OneHotDense.from_embedding(layer)
    assert dense.quantization_mode == layer.quantization_mode
    assert_close(dense(IDS), layer(IDS), atol=1e-6)
    back = kel.LookupEmbedding.from_one_hot_dense(dense)
    assert_close(back(IDS), layer(IDS), atol=1e-6)
    keras_layer = keras.layers.Embedding(10, 16,
                                         weights=random_table(10, 16, 11))
    if mode in MODES:
        keras_layer.quantize(mode)
    assert_close(kel.OneHotDense.from_embedding(keras_layer)(IDS),
                 keras_layer(IDS), atol=1e-6)
    if mode in MODES:
        layer.enable_lora(2)
        with pytest.raises(ValueError, match="has LoRA enabled"):
            kel.OneHotDense.from_embedding(layer)


def _quantized_copy(cls, table, mode, **kwargs):
    """`cls` with `table`, stored in `mode` (`"float"`, `"int8"`, `"int4"`
    one scale per row, `"int4-blocks"`), under the global dtype policy."""
    layer = cls(*table.shape, weights=table, **kwargs)
    if mode != "float":
        block_size = 4 if mode == "int4-blocks" else -1
        layer.quantize(mode[:4], config=_config(mode[:4], block_size))
    return layer


@pytest.mark.parametrize("max_norm", [
    pytest.param(200.0, id="max_norm200"),
    # 300 ** 2 is inf in float16: such a limit never clipped.
    pytest.param(300.0, id="max_norm300"),
])
@pytest.mark.parametrize("mode, policy", [
    ("float", "mixed_float16"),
    ("int4", "mixed_float16"),
    ("int4-blocks", "mixed_float16"),
    # Keras refuses int8 with a float16 compute dtype (its own check).
    ("int8", "mixed_bfloat16"),
])
@pytest.mark.parametrize("cls", [kel.LookupEmbedding, kel.OneHotDense])
def test_max_norm_under_mixed_precision(cls, mode, policy, max_norm):
    # Row 1 has norm 345: its float16 sum of squares overflows (the rows
    # of a quantized table were dequantized, then squared, in float16).
    table = np.zeros((4, 8), "float32")
    # Both signs in each block of 4: Keras's int4 blocks keep its values.
    table[1] = np.tile([1.0, -1.5, 2.0, -0.5], 2)
    table[1] *= 345.0 / np.linalg.norm(table[1])
    table[2] = np.linspace(-1.0, 1.0, 8)
    ids = np.array([1, 2, 1], "int32")
    x = np.random.default_rng(4).normal(size=(2, 8)).astype("float32")
    reference = _quantized_copy(cls, table, mode, max_norm=max_norm)
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(policy)
        layer = _quantized_copy(cls, table, mode, max_norm=max_norm)
        rows = to_numpy(layer(ids)).astype("float32")
        logits = to_numpy(layer(x, reverse=True)).astype("float32")
    finally:
        keras.config.set_dtype_policy(previous)
    assert layer.compute_dtype == policy.split("_")[1]
    rtol = 4e-3 if policy == "mixed_float16" else 2e-2
    np.testing.assert_allclose(np.linalg.norm(rows[[0, 2]], axis=-1),
                               [max_norm, max_norm], rtol=rtol)
    np.testing.assert_allclose(rows, to_numpy(reference(ids)), rtol=rtol,
                               atol=rtol)
    np.testing.assert_allclose(logits, to_numpy(reference(x, reverse=True)),
                               rtol=rtol, atol=rtol * max_norm)


@pytest.mark.parametrize("cap", [0, -1.0, float("inf"), float("nan"), "2",
                                 True])
def test_logit_soft_cap_must_be_positive(cap):
    # 0 once gave all-zero logits, a negative cap flipped their sign.
    with pytest.raises(ValueError, match=re.escape(
            "`logit_soft_cap` must be None or a positive number. Received: "
            f"logit_soft_cap={cap!r} (of type {type(cap).__name__}).")):
        kel.LookupEmbedding(10, 4, logit_soft_cap=cap)


@pytest.mark.parametrize("cap", [None, 0.5, 30])
def test_valid_logit_soft_cap(cap):
    table = random_table(5, 4, seed=2) * 10.0
    x = np.random.default_rng(3).normal(size=(2, 4)).astype("float32")
    layer = kel.LookupEmbedding(5, 4, weights=table, logit_soft_cap=cap)
    logits = x @ table.T
    expected = logits if cap is None else np.tanh(logits / cap) * cap
    assert_close(layer(x, reverse=True), expected, atol=1e-4)


@pytest.mark.parametrize("max_norm", [200.0, 300.0])
@pytest.mark.parametrize("cls", [kel.LookupEmbedding, kel.OneHotDense])
def test_max_norm_of_a_float16_table(cls, max_norm):
    # A table stored in float16 (dtype="float16", not mixed precision):
    # a row of norm 345 has a sum of squares of 119,025, past float16's
    # 65,504, and max_norm=300 squared is past it too. The norm is taken
    # in float32: the rows come out at max_norm, not zero or unclipped.
    table = np.zeros((3, 8), "float32")
    table[1] = np.tile([1.0, -1.5, 2.0, -0.5], 2)
    table[1] *= 345.0 / np.linalg.norm(table[1])
    layer = cls(3, 8, weights=table, max_norm=max_norm, dtype="float16")
    rows = to_numpy(layer(np.array([1, 2], "int32"))).astype("float32")
    assert layer.compute_dtype == "float16"
    np.testing.assert_allclose(np.linalg.norm(rows[0]), max_norm, rtol=2e-3)
    np.testing.assert_allclose(rows[0], table[1] * max_norm / 345.0,
                               rtol=4e-3, atol=0.1)
    np.testing.assert_array_equal(rows[1], 0.0)


@pytest.mark.parametrize("width", [4, 3])  # Bytes per row: pairs, or odd.
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_int4_rows_match_keras_unpack_for_every_byte(width, dtype):
    """`backend.int4_rows` (the lookups' unpacking of gathered rows) gives
    Keras's `unpack_int4` values and `q / scale` arithmetic for all 256
    bytes, in both nibbles, with an odd number of channels sliced off."""
    from keras_embedlab import backend

    packed = np.arange(-128, 128).astype("int8")
    packed = np.concatenate([packed, packed[::-1], packed[:width]])
    packed = packed[: len(packed) // width * width].reshape(-1, width)
    channels = 2 * width - 1
    scale = np.linspace(0.5, 3.0, len(packed)).astype("float32")
    expected = keras.quantizers.unpack_int4(packed, channels, axis=-1)
    expected = keras.ops.divide(
        keras.ops.cast(expected, dtype),
        keras.ops.expand_dims(keras.ops.cast(scale, dtype), -1))
    got = backend.int4_rows(keras.ops.convert_to_tensor(packed), channels,
                            dtype, keras.ops.convert_to_tensor(scale))
    assert keras.backend.standardize_dtype(got.dtype) == dtype
    assert_equal(to_numpy(keras.ops.cast(got, "float32")),
                 to_numpy(keras.ops.cast(expected, "float32")))
    unscaled = backend.int4_rows(keras.ops.convert_to_tensor(packed),
                                 2 * width, "float32")
    assert_equal(to_numpy(unscaled), to_numpy(
        keras.quantizers.unpack_int4(packed, 2 * width, axis=-1)))


@pytest.mark.skipif(BACKEND != "torch", reason="torch.export is PyTorch's")
def test_int4_lookup_after_torch_export_stays_eager():
    """Exporting an int4 lookup (fake tensors) leaves nothing fake behind
    for later eager calls (the unpacking table is made outside tracing)."""
    import torch

    layer = kel.LookupEmbedding(10, 8, invalid_ids="zeros")
    model = keras.Sequential([keras.Input((4,), dtype="int32"), layer])
    layer.quantize("int4")
    ids = torch.tensor([[0, 1, 2, 9], [3, 4, 5, 6]], dtype=torch.int32)
    program = torch.export.export(model, (ids,))
    assert_equal(program.module()(ids), model(ids))
