"""`to_keras`/`from_keras`: models moved between our layers and Keras's
`Embedding`/`ReversibleEmbedding`, with equal outputs and weights."""

import json
import os
import subprocess
import sys
import warnings
import zipfile

import keras
import numpy as np
import pytest

from keras_embedlab import (
    LazyAdam,
    LookupEmbedding,
    OneHotDense,
    PretrainedEmbedding,
    RowSparseModel,
    from_keras,
    load_converted_weights,
    to_keras,
)

IDS = np.array([[1, 2, 0, 5], [3, 3, 9, 0]], "int32")


def _tied_model(layer):
    """ids -> layer -> Dense -> the layer reversed (tied logits)."""
    inputs = keras.Input((4,), dtype="int32")
    hidden = keras.layers.Dense(8, name="dense")(layer(inputs))
    return keras.Model(inputs, layer(hidden, reverse=True))


def _layer(quantize=None, lora=None, **kwargs):
    layer = LookupEmbedding(10, 8, name="emb", **kwargs)
    layer.build()
    rng = np.random.default_rng(0)
    layer.embeddings.assign(rng.normal(size=(10, 8)).astype("float32"))
    if quantize:
        layer.quantize(quantize)
    if lora:
        layer.enable_lora(lora, lora_alpha=3)
        layer.lora_embeddings_b.assign(rng.normal(size=(lora, 8)))
    return layer


def _types(model):
    return [type(layer).__name__ for layer in model.layers]


def _assert_equal(model, other, ids=IDS):
    expected = model.predict(ids, verbose=0)
    actual = other.predict(ids, verbose=0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("quantize,lora,kwargs", [
    (None, None, {"mask_zero": True}),
    (None, 2, {}),
    ("int8", None, {"tie_weights": False, "logit_soft_cap": 3.0}),
    ("int4", None, {}),
])
def test_round_trip_keeps_outputs_and_stored_values(quantize, lora, kwargs):
    model = _tied_model(_layer(quantize, lora, **kwargs))
    converted = to_keras(model)
    assert _types(converted) == ["InputLayer", "ReversibleEmbedding",
                                 "Dense"]
    _assert_equal(model, converted)
    ours, theirs = model.layers[1], converted.layers[1]
    assert theirs.quantization_mode == ours.quantization_mode
    assert theirs.mask_zero == ours.mask_zero
    stored = {v.name: keras.ops.convert_to_numpy(v) for v in theirs.weights}
    for name, variable in ours._stored_variables().items():
        # Bit-equal storage: the same integers and scales.
        np.testing.assert_array_equal(
            stored[name], keras.ops.convert_to_numpy(variable))
    back = from_keras(converted)
    assert _types(back) == ["InputLayer", "LookupEmbedding", "Dense"]
    assert back.layers[1].lora_enabled == bool(lora)
    _assert_equal(model, back)


def test_plain_lookup_becomes_embedding_and_grouped_int4_is_kept():
    layer = LookupEmbedding(10, 8, name="emb")
    layer.build()
    layer.quantize("int4", config=keras.quantizers.Int4QuantizationConfig(
        block_size=4))
    model = keras.Sequential([keras.Input((4,), dtype="int32"), layer,
                              keras.layers.GlobalAveragePooling1D()])
    converted = to_keras(model)
    assert type(converted) is keras.Sequential
    assert type(converted.layers[0]) is keras.layers.Embedding
    assert converted.layers[0]._int4_block_size == 4
    _assert_equal(model, converted)


def test_pretrained_embedding_keeps_its_mask_and_frozen_table():
    vocabulary = ["", "[UNK]", *"abcdefgh"]
    layer = PretrainedEmbedding(10, 4, vocabulary=vocabulary, mask_zero=True,
                                weights=np.arange(40.0).reshape(10, 4))
    inputs = keras.Input((4,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    converted = to_keras(model).layers[1]
    assert type(converted) is keras.layers.Embedding
    assert (converted.mask_zero, converted.trainable) == (True, False)
    ids = keras.ops.convert_to_tensor(IDS)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(converted.compute_mask(ids)), IDS != 0)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(converted(ids)),
        np.arange(40.0).reshape(10, 4)[IDS])


def test_one_hot_dense_and_nested_models_with_shared_layers():
    one_hot = OneHotDense(10, 6, name="one_hot")
    one_hot.build()
    one_hot.quantize("int8")
    inner_in = keras.Input((4,), dtype="int32")
    inner = keras.Model(inner_in, one_hot(inner_in), name="inner")
    shared = LookupEmbedding(10, 6, name="shared")
    inputs = keras.Input((4,), dtype="int32")
    outputs = keras.layers.Add()([inner(inputs), shared(inputs),
                                  shared(keras.ops.flip(inputs, axis=1))])
    model = keras.Model(inputs, outputs)
    converted = to_keras(model)
    nested = converted.get_layer("inner")
    assert type(nested.get_layer("one_hot")) is keras.layers.Embedding
    assert type(converted.get_layer("shared")) is keras.layers.Embedding
    # One shared layer, called twice.
    assert len(converted.get_layer("shared")._inbound_nodes) == 2
    _assert_equal(model, converted)


def test_every_problem_is_listed_in_one_error():
    bag = LookupEmbedding(10, 4, combiner="mean", padding_idx=0, name="bag")
    relu = OneHotDense(10, 4, activation="relu", invalid_ids="zeros",
                       max_norm=1.0, name="relu")
    inputs = keras.Input((4,), dtype="int32")
    model = keras.Model(inputs, [bag(inputs), relu(inputs)])
    with pytest.raises(ValueError) as info:
        to_keras(model)
    message = str(info.value)
    assert "(5 problem(s))" in message
    for text in ("layer 'bag': combiner='mean'", "layer 'bag': padding_idx=0",
                 "layer 'relu': activation='relu'",
                 "layer 'relu': invalid_ids='zeros'",
                 "layer 'relu': max_norm=1.0"):
        assert text in message


def test_our_model_class_and_optimizer_are_refused():
    inputs = keras.Input((4,), dtype="int32")
    model = RowSparseModel(inputs, LookupEmbedding(10, 4)(inputs),
                           name="sparse")
    model.compile(optimizer=LazyAdam(), loss="mse")
    with pytest.raises(ValueError) as info:
        to_keras(model)
    assert "'sparse': class='RowSparseModel'" in str(info.value)
    assert "'sparse': optimizer='LazyAdam'" in str(info.value)


def test_quantized_mask_keras_would_drop_is_refused():
    layer = _layer("int8", mask_zero=True)
    inputs = keras.Input((4,), dtype="int32")
    plain = keras.Model(inputs, layer(inputs))
    # Keras's quantized Embedding keeps the mask ...
    assert to_keras(plain).layers[1].supports_masking
    # ... its quantized ReversibleEmbedding (3.15) gives none.
    with pytest.raises(ValueError, match="'emb': mask_zero=True.*no mask"):
        to_keras(_tied_model(layer))


def test_quantized_lora_in_reverse_is_refused():
    with pytest.raises(ValueError, match="'emb': lora_rank=2.*reverse"):
        to_keras(_tied_model(_layer("int8", 2)))


def test_layer_inside_a_custom_layer_is_refused():
    class Wrapper(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = LookupEmbedding(10, 4, name="hidden")

        def call(self, ids):
            return self.inner(ids)

    inputs = keras.Input((4,), dtype="int32")
    model = keras.Model(inputs, Wrapper(name="wrapper")(inputs))
    with pytest.raises(ValueError, match="'hidden': inside='wrapper'"):
        to_keras(model)


class TinyBackbone(keras.Model):
    """A keras-hub-like backbone: a Functional subclass with its own
    constructor, a tied `ReversibleEmbedding`, attention."""

    def __init__(self, vocabulary_size=12, dim=8, **kwargs):
        ids = keras.Input((5,), dtype="int32")
        token = keras.layers.ReversibleEmbedding(vocabulary_size, dim,
                                                 mask_zero=True,
                                                 name="token_embedding")
        x = token(ids)
        x = keras.layers.Attention(name="attention")([x, x])
        x = keras.layers.Dense(dim, name="feedforward")(x)
        super().__init__(ids, token(x, reverse=True), **kwargs)
        self.vocabulary_size, self.dim = vocabulary_size, dim

    def get_config(self):
        return {"vocabulary_size": self.vocabulary_size, "dim": self.dim}


def test_from_keras_converts_a_backbone_with_grouped_int4():
    backbone = TinyBackbone()
    backbone.get_layer("token_embedding").quantize(
        "int4", config=keras.quantizers.Int4QuantizationConfig(block_size=4))
    ours = from_keras(backbone)
    token = ours.get_layer("token_embedding")
    assert type(token) is LookupEmbedding
    assert (token.quantization_mode, token._int4_block_size) == ("int4", 4)
    # Keras's quantized ReversibleEmbedding gives no mask: neither does
    # the converted layer, so the attention sees what it saw.
    assert not token.mask_zero
    ids = np.array([[1, 2, 3, 0, 0], [11, 4, 5, 6, 0]], "int32")
    # Eager calls: compiling attention for `predict` costs seconds.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(ids)),
                               keras.ops.convert_to_numpy(backbone(ids)),
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(token.embeddings),
        keras.ops.convert_to_numpy(
            backbone.get_layer("token_embedding").embeddings))


def test_from_keras_keeps_keras_lora_and_sets_invalid_ids():
    layer = keras.layers.Embedding(10, 8, name="emb")
    layer.build()
    layer.quantize("int8")
    layer.enable_lora(2, lora_alpha=4)
    layer.lora_embeddings_b.assign(np.ones((2, 8)))
    inputs = keras.Input((4,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    ours = from_keras(model, invalid_ids="zeros")
    new = ours.get_layer("emb")
    assert (new.quantization_mode, new.lora_rank, new.lora_alpha) == (
        "int8", 2, 4)
    _assert_equal(model, ours)
    rows = ours.predict(np.array([[0, 10, -1, 1]]), verbose=0)
    np.testing.assert_array_equal(rows[0, 1:3], 0)
    with pytest.raises(ValueError, match="invalid_ids"):
        from_keras(model, invalid_ids="clip")


# Keras's own int8 tied reverse transposes a 1-D scale (PyTorch warns).
@pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning")
def test_weights_files_load_across_after_conversion(tmp_path):
    ours = _tied_model(_layer("int8"))
    theirs = to_keras(ours)
    ours_file = str(tmp_path / "ours.weights.h5")
    keras_file = str(tmp_path / "keras.weights.h5")
    ours.save_weights(ours_file)
    theirs.save_weights(keras_file)

    def fresh():
        layer = LookupEmbedding(10, 8, name="emb")
        layer.build()
        layer.quantize("int8")
        return _tied_model(layer)

    # A model of Keras's classes reads the file of ours ...
    keras_model = to_keras(fresh())
    with pytest.raises(ValueError, match="could not be loaded"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's own, about the file.
        keras_model.load_weights(ours_file)  # What Keras alone does.
    load_converted_weights(keras_model, ours_file)
    _assert_equal(ours, keras_model)
    # ... and a model of ours the file of Keras's classes.
    our_model = fresh()
    load_converted_weights(our_model, keras_file)
    _assert_equal(ours, our_model)


def test_converted_file_loads_without_keras_embedlab(tmp_path):
    model = _tied_model(_layer("int8", tie_weights=False))
    path, ours_path = str(tmp_path / "model.keras"), str(tmp_path / "o.keras")
    to_keras(model).save(path)
    model.save(ours_path)
    with zipfile.ZipFile(path) as archive:
        assert "keras_embedlab" not in archive.read("config.json").decode()
    expected = model.predict(IDS, verbose=0)
    # keras_embedlab cannot be imported (None in sys.modules blocks every
    # import of it, the editable install's finder included), and the repo
    # is off the path: the file of our classes must fail to load there.
    code = (
        "import sys, json; sys.modules['keras_embedlab'] = None\n"
        "import keras, numpy as np\n"
        "try:\n"
        f"    keras.saving.load_model({ours_path!r})\n"
        "    ours = 'loaded'\n"
        "except Exception as error:\n"
        "    ours = type(error).__name__\n"
        f"m = keras.saving.load_model({path!r})\n"
        f"ids = np.array({IDS.tolist()}, 'int32')\n"
        "print(json.dumps([ours, [type(l).__name__ for l in m.layers],\n"
        "                  m.predict(ids, verbose=0).tolist()]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], env=env,
                            cwd=str(tmp_path), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ours, types, outputs = json.loads(result.stdout.strip().splitlines()[-1])
    assert ours != "loaded"
    assert types == ["InputLayer", "ReversibleEmbedding", "Dense"]
    np.testing.assert_allclose(np.array(outputs, "float32"), expected,
                               rtol=0, atol=1e-6)
