"""Behaviour both layers share: values, shapes, masks, config, arguments."""

import io
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout

import keras
import numpy as np
import pytest
from helpers import (
    ID_CASES,
    LAYERS,
    WORKED_WEIGHTS,
    assert_close,
    assert_equal,
    random_ids,
    random_table,
    to_numpy,
)

import keras_embedlab as kel


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_worked_example(layer_cls):
    layer = layer_cls(3, 4, weights=WORKED_WEIGHTS)
    outputs = to_numpy(layer(np.array([0, 2, 1, 2])))
    np.testing.assert_array_equal(outputs, WORKED_WEIGHTS[[0, 2, 1, 2]])
    np.testing.assert_array_equal(
        outputs[1], np.array([0.9, 0.0, 0.1, 0.2], "float32")
    )


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("shape,dtype", ID_CASES)
def test_matches_numpy_reference(layer_cls, shape, dtype):
    table = random_table(11, 5)
    ids = random_ids(shape, dtype, 11)
    layer = layer_cls(11, 5, weights=[table])
    outputs = layer(keras.ops.convert_to_tensor(ids, dtype=dtype))
    assert tuple(outputs.shape) == shape + (5,)
    assert_equal(outputs, table[ids])


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_float_ids_are_cast_like_keras(layer_cls):
    layer = layer_cls(3, 4, weights=WORKED_WEIGHTS)
    assert_equal(layer(np.array([2.0, 0.0])), WORKED_WEIGHTS[[2, 0]])


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("mask_zero", [True, False])
def test_compute_mask(layer_cls, mask_zero):
    layer = layer_cls(5, 2, mask_zero=mask_zero)
    ids = np.array([[0, 3, 0], [4, 0, 1]])
    mask = layer.compute_mask(ids)
    if mask_zero:
        assert_equal(mask, ids != 0)
        assert layer.supports_masking
    else:
        assert mask is None


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("mask_zero", [True, False])
def test_reverse_call_changes_no_state(layer_cls, mask_zero):
    """Nothing on the layer changes while a `reverse=True` call runs.

    A hook on the reverse computation runs, in the middle of that call, a
    forward call (mean pooling sees its ids mask, or none), `compute_mask`,
    and the same forward call and `supports_masking` from another thread,
    and compares the layer's attributes with those before the call.
    """
    table = random_table(6, 3)
    layer = layer_cls(6, 3, mask_zero=mask_zero, weights=table)
    pool = keras.layers.GlobalAveragePooling1D()
    ids = np.array([[1, 2, 0, 0], [5, 4, 3, 0]], "int32")
    if mask_zero:
        pooled_rows = np.stack([table[[1, 2]].mean(0),
                                table[[5, 4, 3]].mean(0)])
    else:
        pooled_rows = table[ids].mean(1)
    vectors = random_table(8, 3, seed=1).reshape(2, 4, 3)

    def forward():
        return to_numpy(pool(layer(ids)))

    assert_close(forward(), pooled_rows)
    before = dict(vars(layer))
    during = {}
    reverse = layer._reverse

    def hook(*args, **kwargs):
        now = vars(layer)
        during["changed"] = sorted(
            name for name in {*before, *now}
            if now.get(name, hook) is not before.get(name, hook))
        during["compute_mask"] = layer.compute_mask(ids)
        during["forward"] = forward()
        with ThreadPoolExecutor(1) as executor:
            during["thread"] = executor.submit(forward).result()
            during["thread_supports_masking"] = executor.submit(
                lambda: layer.supports_masking).result()
        return reverse(*args, **kwargs)

    layer._reverse = hook
    try:
        logits = layer(vectors, reverse=True)
    finally:
        del layer._reverse
    assert during["changed"] == []
    if mask_zero:
        assert_equal(during["compute_mask"], ids != 0)
    else:
        assert during["compute_mask"] is None
    assert_close(during["forward"], pooled_rows)
    assert_close(during["thread"], pooled_rows)
    assert during["thread_supports_masking"] is mask_zero
    assert layer.supports_masking is mask_zero
    # The reverse call itself: unmasked vectors give unmasked logits (no
    # mask computed as if the vectors were ids), so pooling takes the mean
    # over every position.
    assert_close(logits, vectors @ table.T)
    assert_close(pool(logits), (vectors @ table.T).mean(1))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="only TensorFlow has ragged tensors")
@pytest.mark.parametrize("layer_cls", LAYERS)
def test_ragged_ids_refuse_bag_weights_without_combiner(layer_cls):
    """Ragged ids with `bag_weights` and no combiner: the dense ids' error.

    Without a combiner, ragged ids are looked up value by value; the
    weights must not be dropped on the way.
    """
    import tensorflow as tf

    layer = layer_cls(5, 2)
    with pytest.raises(ValueError) as dense:
        layer(np.array([[1, 2], [3, 0]]), bag_weights=np.ones((2, 2)))
    assert "`bag_weights` needs a `combiner`" in str(dense.value)
    message = re.escape(str(dense.value))
    ids = tf.ragged.constant([[1, 2], [3]])
    weights = tf.ragged.constant([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=message):
        layer(ids, bag_weights=weights)
    symbolic_ids = keras.Input((None,), dtype="int32", ragged=True)
    symbolic_weights = keras.Input((None,), dtype="float32", ragged=True)
    with pytest.raises(ValueError, match=message):
        layer(symbolic_ids, bag_weights=symbolic_weights)
    # Without weights, ragged ids still give ragged rows.
    rows = layer(ids)
    assert isinstance(rows, tf.RaggedTensor)
    assert_equal(rows.flat_values, to_numpy(layer(np.array([1, 2, 3]))))


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_mask_reaches_the_next_layer(layer_cls):
    # Mean pooling honours the mask: padded positions must not count.
    table = random_table(6, 3)
    inputs = keras.Input((4,), dtype="int32")
    embedded = layer_cls(6, 3, mask_zero=True, weights=[table])(inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    model = keras.Model(inputs, pooled)
    ids = np.array([[1, 2, 0, 0], [5, 0, 0, 0]], "int32")
    expected = np.stack([table[[1, 2]].mean(0), table[5]])
    np.testing.assert_allclose(model.predict(ids, verbose=0), expected,
                               atol=1e-6)


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("shape", [(9,), (4, 6), (None, 4)])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_symbolic_output_shape(layer_cls, shape, dtype):
    inputs = keras.Input(shape, dtype=dtype)
    outputs = layer_cls(10, 7)(inputs)
    assert outputs.shape == (None, *shape, 7)
    model = keras.Model(inputs, outputs)
    ids = np.ones((2, *(s or 3 for s in shape)), dtype)
    assert model.predict(ids, verbose=0).shape == (2, *ids.shape[1:], 7)


@pytest.mark.parametrize(
    "layer",
    [
        pytest.param(
            lambda: kel.LookupEmbedding(
                9, 4, embeddings_initializer="he_normal",
                embeddings_regularizer="l2", embeddings_constraint="non_neg",
                mask_zero=True, invalid_ids="zeros", name="emb",
                trainable=False,
            ),
            id="LookupEmbedding",
        ),
        pytest.param(
            lambda: kel.OneHotDense(
                9, 4, use_bias=True, activation="relu",
                kernel_initializer="he_normal", bias_initializer="ones",
                kernel_regularizer="l2", bias_regularizer="l1",
                kernel_constraint="non_neg", bias_constraint="max_norm",
                mask_zero=True, invalid_ids="zeros", name="ohd",
                trainable=False,
            ),
            id="OneHotDense",
        ),
    ],
)
def test_config_round_trip(layer):
    layer = layer()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert config["invalid_ids"] == "zeros"
    assert config["mask_zero"] is True
    assert config["trainable"] is False
    assert "weights" not in config
    # The config survives Keras's own (de)serialization through the registry.
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == (
        f"keras_embedlab>{type(layer).__name__}"
    )
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(layer)
    assert restored.get_config() == config


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("wrap", [lambda w: w, lambda w: [w]],
                         ids=["array", "list"])
def test_weights_argument(layer_cls, wrap):
    layer = layer_cls(3, 4, weights=wrap(WORKED_WEIGHTS))
    assert layer.built
    assert_equal(layer.weights[0], WORKED_WEIGHTS)


def test_one_hot_dense_weights_with_bias():
    bias = np.array([1.0, 2.0, 3.0, 4.0], "float32")
    layer = kel.OneHotDense(3, 4, use_bias=True,
                            weights=[WORKED_WEIGHTS, bias])
    assert_equal(layer(np.array([1])), WORKED_WEIGHTS[[1]] + bias)
    # A kernel alone keeps the bias initializer's value (zeros).
    layer = kel.OneHotDense(3, 4, use_bias=True, weights=WORKED_WEIGHTS)
    assert_equal(layer.bias, np.zeros(4))


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_weights_argument_with_wrong_shape(layer_cls):
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        layer_cls(3, 4, weights=np.zeros((4, 3), "float32"))


def test_variables_are_named_like_keras():
    lookup = kel.LookupEmbedding(13, 3)
    lookup.build()
    assert [v.name for v in lookup.weights] == ["embeddings"]
    assert tuple(lookup.embeddings.shape) == (13, 3)
    dense = kel.OneHotDense(13, 3, use_bias=True)
    dense.build()
    assert [v.name for v in dense.weights] == ["kernel", "bias"]
    assert tuple(dense.kernel.shape) == (13, 3)
    assert tuple(dense.bias.shape) == (3,)


def test_one_hot_dense_bias_and_activation():
    bias = np.array([-1.0, 0.0, 0.5, -0.6], "float32")
    layer = kel.OneHotDense(3, 4, use_bias=True, activation="relu",
                            weights=[WORKED_WEIGHTS, bias])
    ids = np.array([0, 2])
    assert_equal(layer(ids), np.maximum(WORKED_WEIGHTS[ids] + bias, 0))


BAD_ARGUMENTS = [
    ("input_dim", 0), ("input_dim", -1), ("input_dim", 3.5),
    ("input_dim", True), ("input_dim", "10"), ("input_dim", None),
    ("output_dim", 0), ("output_dim", 2.0), ("output_dim", False),
    ("invalid_ids", "clip"), ("invalid_ids", None), ("invalid_ids", "ERROR"),
    ("mask_zero", "yes"), ("mask_zero", 1),
]


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("name,value", BAD_ARGUMENTS,
                         ids=[f"{n}={v!r}" for n, v in BAD_ARGUMENTS])
def test_bad_constructor_arguments(layer_cls, name, value):
    kwargs = {"input_dim": 10, "output_dim": 4, name: value}
    with pytest.raises(ValueError) as info:
        layer_cls(**kwargs)
    message = str(info.value)
    assert f"`{name}`" in message
    assert f"Received: {name}={value!r}" in message


def test_bad_use_bias():
    with pytest.raises(ValueError, match=r"`use_bias`.*use_bias='no'"):
        kel.OneHotDense(10, 4, use_bias="no")


def test_invalid_ids_message_lists_choices():
    with pytest.raises(ValueError, match="'error', 'zeros'"):
        kel.LookupEmbedding(10, 4, invalid_ids="wrap")


def summary_text(model):
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        model.summary(line_length=120)
    return buffer.getvalue()


def summary_count(text, label):
    match = re.search(rf"{label} params: ([\d,]+)", text)
    return int(match.group(1).replace(",", ""))


@pytest.mark.parametrize(
    "make_layer,expected",
    [
        pytest.param(lambda: kel.LookupEmbedding(13, 3), 39, id="lookup"),
        pytest.param(lambda: kel.OneHotDense(13, 3), 39, id="dense"),
        pytest.param(lambda: kel.OneHotDense(13, 3, use_bias=True), 42,
                     id="dense-bias"),
    ],
)
@pytest.mark.parametrize("trainable", [True, False])
def test_model_summary_counts(make_layer, expected, trainable):
    layer = make_layer()
    layer.trainable = trainable
    model = keras.Sequential([keras.Input((1000,), dtype="int32"), layer])
    assert layer.count_params() == expected
    assert model.count_params() == expected
    text = summary_text(model)
    assert type(layer).__name__ in text
    assert "(None, 1000, 3)" in text
    assert summary_count(text, "Total") == expected
    assert summary_count(text, "Trainable") == (expected if trainable else 0)
    assert summary_count(text, "Non-trainable") == (
        0 if trainable else expected
    )


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("invalid_ids", ["error", "zeros"])
@pytest.mark.parametrize("shape", [(0,), (2, 0)], ids=["empty", "empty-2d"])
def test_empty_ids(layer_cls, invalid_ids, shape):
    layer = layer_cls(3, 4, weights=WORKED_WEIGHTS, invalid_ids=invalid_ids)
    assert tuple(layer(np.zeros(shape, "int32")).shape) == shape + (4,)
    model = keras.Sequential([keras.Input((0,), dtype="int32"), layer])
    assert model.predict(np.zeros((2, 0), "int32"), verbose=0).shape == (
        2, 0, 4
    )
