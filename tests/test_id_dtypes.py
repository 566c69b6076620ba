"""Ids of every dtype: checked before any narrowing cast, on every backend.

Unsigned ids of 2**32 and above, NaN and fractional float ids, and strings
once reached the table as another (valid) row or a raw backend error.
"""

import logging
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
)

import keras_embedlab as kel
from keras_embedlab.ids.reader import invalid_ids_message

ZERO = np.zeros(4, "float32")


def pattern(bad):
    # TensorFlow graphs put the id in brackets: "invalid id: ] [7] [. Ids".
    brackets = r"\]? ?\[?"
    return (rf"(?s)invalid id: {brackets}{bad}{brackets}\. Ids must be "
            r"whole.*\[0, 3\)")


def model_of(layer, dtype):
    inputs = keras.Input((2,), dtype=dtype)
    outputs = keras.layers.Flatten()(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "mse")
    return model


# --- Item 3: unsigned ids never wrap -------------------------------------

def _uint64_tensor(values):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.constant(values, tf.uint64)
    if BACKEND == "torch":
        import torch

        return torch.tensor(values, dtype=torch.uint64)
    pytest.skip("JAX without jax_enable_x64 has no uint64 arrays (it makes "
                "them uint32 itself, before any layer sees them)")


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_uint64_tensor_ids_do_not_wrap(layer_cls):
    ids = _uint64_tensor([2**32 + 1, 1])
    with pytest.raises(ValueError, match=pattern(2**32 + 1)):
        layer_cls(3, 4, weights=WORKED_WEIGHTS)(ids)
    zeros = layer_cls(3, 4, weights=WORKED_WEIGHTS, invalid_ids="zeros")
    assert_equal(zeros(ids), np.stack([ZERO, WORKED_WEIGHTS[1]]))
    valid = _uint64_tensor([2, 0])
    assert_equal(zeros(valid), WORKED_WEIGHTS[[2, 0]])


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_uint64_ids_compiled(layer_cls):
    ids = _uint64_tensor([2**32 + 1, 1])
    layer = layer_cls(3, 4, weights=WORKED_WEIGHTS)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=pattern(2**32 + 1)):
            tf.function(layer)(ids)
        # XLA drops the assertion: a zero row, never row 1.
        compiled = tf.function(layer, jit_compile=True)
        assert_equal(compiled(ids), np.stack([ZERO, WORKED_WEIGHTS[1]]))
    else:
        import torch

        compiled = torch.compile(layer, backend="eager")
        with pytest.raises(ValueError, match=pattern(2**32 + 1)):
            compiled(ids)


@pytest.mark.parametrize("method", ["predict", "fit"])
def test_uint64_ids_in_model(method):
    if BACKEND == "jax":
        pytest.skip("JAX without jax_enable_x64 has no uint64 arrays")
    if BACKEND == "torch":
        pytest.skip("Keras's PyTorch backend cannot hold uint64 data "
                    "(`Unsupported dtype for PyTorch: uint64`)")
    layer = kel.LookupEmbedding(3, 4, weights=WORKED_WEIGHTS)
    model = model_of(layer, "uint64")
    ids = np.array([[2**32 + 1, 1]], "uint64")
    with pytest.raises(invalid_id_error(), match=pattern(2**32 + 1)):
        if method == "predict":
            model.predict(ids, verbose=0)
        else:
            model.fit(ids, np.zeros((1, 8)), verbose=0)
    # Nothing trained: row 1 (where 2**32 + 1 used to land) is untouched.
    assert_equal(layer.embeddings, WORKED_WEIGHTS)


# --- Item 4: float ids must be whole numbers -----------------------------

FLOAT_BAD = [
    pytest.param(np.nan, "nan", id="nan"),
    pytest.param(np.inf, "inf", id="inf"),
    pytest.param(1.5, "1.5", id="fraction"),
    pytest.param(-0.5, "-0.5", id="negative-fraction"),
]


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("bad,shown", FLOAT_BAD)
@pytest.mark.parametrize("as_tensor", [False, True],
                         ids=["numpy", "tensor"])
def test_bad_float_ids(layer_cls, bad, shown, as_tensor):
    ids = np.array([bad, 1.0], "float32")
    if as_tensor:
        ids = keras.ops.convert_to_tensor(ids)
    with pytest.raises(ValueError, match=pattern(shown)):
        layer_cls(3, 4, weights=WORKED_WEIGHTS)(ids)
    zeros = layer_cls(3, 4, weights=WORKED_WEIGHTS, invalid_ids="zeros")
    assert_equal(zeros(ids), np.stack([ZERO, WORKED_WEIGHTS[1]]))


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_whole_float_ids_work_as_in_keras(layer_cls):
    ids = np.array([[2.0, 0.0], [1.0, 2.0]], "float32")
    expected = keras.layers.Embedding(3, 4, weights=WORKED_WEIGHTS)(ids)
    assert_equal(layer_cls(3, 4, weights=WORKED_WEIGHTS)(ids), expected)
    tensor = keras.ops.convert_to_tensor(ids)
    assert_equal(layer_cls(3, 4, weights=WORKED_WEIGHTS)(tensor), expected)


@pytest.mark.parametrize("method", ["predict", "fit"])
@pytest.mark.parametrize("bad,shown", FLOAT_BAD[:1] + FLOAT_BAD[2:3])
def test_bad_float_ids_in_model(method, bad, shown):
    layer = kel.LookupEmbedding(3, 4, weights=WORKED_WEIGHTS)
    model = model_of(layer, "float32")
    ids = np.array([[bad, 2.0]], "float32")
    with pytest.raises(invalid_id_error(), match=pattern(shown)):
        if method == "predict":
            model.predict(ids, verbose=0)
        else:
            model.fit(ids, np.zeros((1, 8)), verbose=0)
    if BACKEND != "jax":
        # (Keras's JAX trainer leaves variables detached after an error.)
        assert_equal(layer.embeddings, WORKED_WEIGHTS)


def test_bad_float_ids_under_jit():
    layer = kel.LookupEmbedding(3, 4, weights=WORKED_WEIGHTS)
    ids = np.array([np.nan, 1.0], "float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(layer, jit_compile=True)
        # XLA drops the assertion: a zero row, never row 0.
        assert_equal(compiled(tf.constant(ids)),
                     np.stack([ZERO, WORKED_WEIGHTS[1]]))
    elif BACKEND == "jax":
        import jax

        variables = [v.value for v in layer.weights]

        @jax.jit
        def compiled(ids):
            return layer.stateless_call(variables, [], ids)[0]

        with pytest.raises(jax.errors.JaxRuntimeError, match=pattern("nan")):
            np.asarray(compiled(ids))
    else:
        import torch

        compiled = torch.compile(layer, backend="eager")
        with pytest.raises(ValueError, match=pattern("nan")):
            compiled(torch.as_tensor(ids))


def test_nan_ids_zeros_mode_fit_trains_nothing():
    layer = kel.LookupEmbedding(3, 4, weights=WORKED_WEIGHTS,
                                invalid_ids="zeros")
    model = model_of(layer, "float32")
    model.fit(np.array([[np.nan, np.nan]], "float32"), np.ones((1, 8)),
              verbose=0)
    assert_equal(layer.embeddings, WORKED_WEIGHTS)


# --- Item 5: int64 ids through model.predict on JAX ----------------------

def test_int64_ids_through_predict():
    layer = kel.LookupEmbedding(3, 4, weights=WORKED_WEIGHTS)
    model = model_of(layer, "int64")
    ids = np.array([[2**32 + 1, 1]], "int64")
    if BACKEND != "jax":
        with pytest.raises(invalid_id_error(), match=pattern(2**32 + 1)):
            model.predict(ids, verbose=0)
        return  # The JAX-only part below does not apply.
    # No hook exists: Keras's JAX trainer converts the batch with
    # `jnp.asarray(x, dtype="int64")`, which JAX (without x64) truncates to
    # int32 before any layer runs. JAX warns at that point; the README says
    # so. A direct call is checked on the host and raises.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(ids, verbose=0)
    assert any("truncated to dtype int32" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match=pattern(2**32 + 1)):
        layer(ids)


# --- Item 6: strings ------------------------------------------------------

STRING_IDS = [
    pytest.param(lambda: np.array(["a", "b"]), id="numpy"),
    pytest.param(lambda: ["a", "b"], id="list"),
    pytest.param(lambda: np.array([b"a"]), id="bytes"),
]


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("make", STRING_IDS)
def test_string_ids_raise_type_error(layer_cls, make):
    layer = layer_cls(3, 4, name="words")
    with pytest.raises(TypeError, match=r"Layer 'words'.*StringLookup"):
        layer(make())


def test_string_tensor_ids_raise_type_error():
    if BACKEND != "tensorflow":
        pytest.skip("only TensorFlow has string tensors")
    import tensorflow as tf

    layer = kel.LookupEmbedding(3, 4, name="words")
    with pytest.raises(TypeError, match=r"Layer 'words'.*StringLookup"):
        layer(tf.constant(["a", "b"]))
    with pytest.raises(TypeError, match=r"Layer 'words'.*StringLookup"):
        layer(keras.Input((2,), dtype="string"))


# --- Item 7: one wording everywhere ---------------------------------------

def _words(message):
    before, after = message.split("7")
    return before.strip(), after.strip()


@pytest.mark.parametrize("where", ["eager", "predict"])
def test_one_wording_everywhere(where, caplog):
    layer = kel.LookupEmbedding(3, 4, weights=WORKED_WEIGHTS, name="emb")
    before, after = _words(invalid_ids_message("emb", 3, 7))
    with caplog.at_level(logging.ERROR):
        with pytest.raises(Exception) as error:
            if where == "eager":
                layer(np.array([1, 7]))
            else:
                model_of(layer, "int32").predict(np.array([[1, 7]], "int32"),
                                                 verbose=0)
    # TensorFlow prints the assertion's strings with quotes escaped.
    text = str(error.value).replace("\\'", "'")
    assert before in text and after in text
    assert text.count(after) == 1
    # Nothing logged it before raising (JAX logs callback errors).
    assert not any(after in r.getMessage() + str(r.exc_info)
                   for r in caplog.records)


# --- Item 21: Keras's own arguments and configs ---------------------------

def test_input_length_warns_and_is_ignored_as_in_keras():
    with pytest.warns(UserWarning, match="input_length` is deprecated"):
        ours = kel.LookupEmbedding(12 + 1, 3, input_length=1000)
    with pytest.warns(UserWarning, match="input_length` is deprecated"):
        keras.layers.Embedding(12 + 1, 3, input_length=1000)
    assert ours(np.array([[1, 12]])).shape == (1, 2, 3)
    assert "input_length" not in ours.get_config()


def test_from_keras_embedding_config():
    config = keras.layers.Embedding(13, 3, mask_zero=True).get_config()
    assert "quantization_config" in config
    layer = kel.LookupEmbedding.from_config(config)
    assert (layer.input_dim, layer.output_dim, layer.mask_zero) == (13, 3, True)
    assert layer(np.array([[0, 12]])).shape == (1, 2, 3)
