"""PretrainedEmbedding quantized: after loading, and loaded straight in int8
(`from_file(..., quantize="int8")`), equal bit for bit to loading float
and quantizing."""

import os
import warnings

import keras
import numpy as np
import pytest
from helpers import to_numpy

import keras_embedlab as kel
from keras_embedlab.vectors import _quantized

# Duplicates ("dup", "Rome" after "rome"), lowercase fallbacks, a row whose
# lowercase form comes before its exact form (a lost fallback), rows the
# vocabulary does not want, and "[unk]" (not the OOV token's vector).
FILE_WORDS = ["the", "paris", "dup", "rome", "london", "dup", "Rome",
              "unused", "[unk]", "king", "queen", "tiny"]
VOCABULARY = ["", "[UNK]", "the", "Paris", "paris", "LONDON", "dup", "Rome",
              "ROME", "nothere", "King", "queen", "alsomissing", "tiny"]


def _matrix(rows, dim, seed=0):
    matrix = np.random.default_rng(seed).normal(size=(rows, dim))
    matrix[-1] *= 1e-6  # Small values: a large scale.
    return matrix.astype("float32")


@pytest.fixture
def vectors_file(tmp_path):
    path = tmp_path / "vectors.txt"
    # Written by hand: Vectors refuses the duplicate "dup".
    with open(path, "w") as f:
        for word, row in zip(FILE_WORDS, _matrix(len(FILE_WORDS), 7)):
            f.write(word + " " + " ".join("%.9g" % v for v in row) + "\n")
    return str(path)


def _load(path, vocabulary, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # The duplicates' warning.
        return kel.PretrainedEmbedding.from_file(path, vocabulary,
                                                 verbose=0, **kwargs)


def _stored(layer):
    return (to_numpy(layer._embeddings),
            to_numpy(layer.embeddings_scale).view(np.uint32))


def _assert_same_int8(direct, after):
    q, scale = _stored(direct)
    q_after, scale_after = _stored(after)
    assert q.dtype == np.int8 and q_after.dtype == np.int8
    np.testing.assert_array_equal(q, q_after)
    np.testing.assert_array_equal(scale, scale_after)
    assert direct.coverage == after.coverage
    assert direct.vocabulary == after.vocabulary
    assert direct.dtype_policy.name == after.dtype_policy.name


@pytest.mark.parametrize("oov, lowercase_fallback", [
    ("random", True), ("zeros", True), ("mean", True), ("random", False),
    ("mean", False)])
def test_direct_int8_equals_float_then_quantize(vectors_file, oov,
                                                lowercase_fallback):
    kwargs = dict(oov=oov, lowercase_fallback=lowercase_fallback, seed=7)
    after = _load(vectors_file, VOCABULARY, **kwargs)
    after.quantize("int8")
    direct = _load(vectors_file, VOCABULARY, quantize="int8", **kwargs)
    _assert_same_int8(direct, after)
    coverage = direct.coverage
    if lowercase_fallback:
        # Paris, LONDON, King and ROME ("rome", not "Rome") via lowercase.
        assert (coverage.found, coverage.lowercase) == (10, 4)
        assert coverage.missing == ["nothere", "alsomissing"]
    # No float table was made: only the int8 variables.
    assert [(w.name, w.dtype) for w in direct.weights] == [
        ("embeddings", "int8"), ("embeddings_scale", "float32")]
    ids = np.arange(len(VOCABULARY))[None]
    np.testing.assert_array_equal(to_numpy(direct(ids)), to_numpy(after(ids)))
    assert direct.mask_zero  # The vocabulary starts with the mask token.


def test_rows_are_the_right_rows(vectors_file):
    layer = _load(vectors_file, VOCABULARY, quantize="int8")
    table = to_numpy(layer._dense_table("float32"))
    rows = dict(zip(FILE_WORDS[::-1], _matrix(len(FILE_WORDS), 7)[::-1]))
    rows["dup"] = _matrix(len(FILE_WORDS), 7)[2]  # The first of the two.
    for token, word in [("the", "the"), ("Paris", "paris"), ("dup", "dup"),
                        ("Rome", "Rome"), ("ROME", "rome"), ("King", "king")]:
        expected = rows[word]
        np.testing.assert_allclose(table[VOCABULARY.index(token)], expected,
                                   atol=np.abs(expected).max() / 127)
    np.testing.assert_array_equal(table[0], 0.0)  # The mask row.


def test_skip_nonfinite_and_binary_and_limit(tmp_path):
    matrix = _matrix(6, 5, seed=3)
    matrix[1, 2] = np.nan
    words = ["a", "B", "b", "c", "d", "e"]
    path = str(tmp_path / "v.bin")
    kel.Vectors(words, matrix).save(path, format="word2vec-binary")
    vocabulary = ["b", "B", "c", "e", "zz"]
    for kwargs in (dict(nonfinite="skip"), dict(nonfinite="skip", limit=4)):
        after = _load(path, vocabulary, **kwargs)
        after.quantize("int8")
        direct = _load(path, vocabulary, quantize="int8", **kwargs)
        _assert_same_int8(direct, after)
    with pytest.raises(kel.VectorFileError, match="not finite|NaN|nan"):
        _load(path, vocabulary, quantize="int8")


def test_random_oov_rows_in_blocks(vectors_file, monkeypatch):
    vocabulary = VOCABULARY + [f"missing{i}" for i in range(9)]
    whole = _load(vectors_file, vocabulary, quantize="int8", seed=3)
    monkeypatch.setattr(_quantized, "OOV_BLOCK_ROWS", 2)
    blocks = _load(vectors_file, vocabulary, quantize="int8", seed=3)
    for a, b in zip(_stored(whole), _stored(blocks)):
        np.testing.assert_array_equal(a, b)


def test_larger_file_equals_float_then_quantize(tmp_path):
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(1500)]
    path = str(tmp_path / "big.txt")
    kel.Vectors(words, rng.normal(size=(1500, 40)).astype("float32")).save(
        path, format="word2vec-text")
    vocabulary = ["", "[UNK]"] + [f"W{i}" for i in range(0, 1500, 3)] + [
        f"w{i}" for i in range(1, 1500, 3)] + ["none1", "none2"]
    for oov in ("random", "mean"):
        after = _load(path, vocabulary, oov=oov)
        after.quantize("int8")
        _assert_same_int8(_load(path, vocabulary, oov=oov, quantize="int8"),
                          after)


@pytest.mark.parametrize("value", ["int4", "float16", 8, True])
def test_quantize_argument_refused(vectors_file, value):
    with pytest.raises(ValueError, match=r"`quantize` must be None .*"
                       rf"quantize={value!r}.*layer\.quantize\('int4'\)"):
        _load(vectors_file, VOCABULARY, quantize=value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(vocabulary=None), "needs a `vocabulary`"),
    (dict(nonfinite="keep"), "nonfinite='keep'"),
    (dict(tie_weights=False), "tie_weights=False"),
    (dict(dtype="bfloat16"), "float32"),
    (dict(quantization_config=keras.quantizers.Int8QuantizationConfig(
        weight_quantizer=keras.quantizers.AbsMaxQuantizer(axis=-1))),
     "quantization_config"),
])
def test_quantize_combinations_refused(vectors_file, kwargs, match):
    vocabulary = kwargs.pop("vocabulary", VOCABULARY)
    with pytest.raises(ValueError, match=match):
        _load(vectors_file, vocabulary, quantize="int8", **kwargs)


def test_no_overlap_names_the_file(vectors_file):
    with pytest.raises(ValueError, match="None of the 2 vocabulary tokens"
                       ".*vectors.txt"):
        _load(vectors_file, ["qq", "rr"], quantize="int8")


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantize_after_loading_and_most_similar(vectors_file, mode):
    layer = _load(vectors_file, VOCABULARY, oov="zeros")
    float_answer = layer.most_similar("paris", k=3)
    layer.quantize(mode)
    assert layer.quantization_mode == mode
    answer = layer.most_similar("paris", k=3)
    assert [w for w, _ in answer] == [w for w, _ in float_answer]
    np.testing.assert_allclose([s for _, s in answer],
                               [s for _, s in float_answer], atol=0.05)
    assert answer[0][0] == "Paris" and answer[0][1] > 0.99


def test_most_similar_with_lora(vectors_file):
    layer = _load(vectors_file, VOCABULARY, oov="zeros", quantize="int8")
    layer.enable_lora(2)
    # Move "queen" onto "the": LoRA must be part of the table searched.
    a = np.zeros((len(VOCABULARY), 2), "float32")
    b = np.zeros((2, 7), "float32")
    table = to_numpy(layer._dense_table("float32"))
    target = VOCABULARY.index("queen")
    a[target, 0] = 1.0
    b[0] = table[VOCABULARY.index("the")] - table[target]
    layer.lora_embeddings_a.assign(a)
    layer.lora_embeddings_b.assign(b)
    word, score = layer.most_similar("the", k=1)[0]
    assert word == "queen" and score > 0.999


@pytest.mark.filterwarnings("ignore:Layer InputLayer does not have")
def test_model_quantize_and_keras_round_trip(vectors_file, tmp_path):
    layer = _load(vectors_file, VOCABULARY)
    model = keras.Sequential([keras.Input((3,), dtype="int32"), layer])
    ids = np.array([[2, 3, 13], [7, 8, 0]])
    model.quantize("int8")
    assert layer.quantization_mode == "int8"
    expected = to_numpy(model(ids))
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    again = loaded.layers[0]
    assert isinstance(again, kel.PretrainedEmbedding)
    assert again.quantization_mode == "int8"
    assert again.vocabulary == VOCABULARY and again.coverage == layer.coverage
    np.testing.assert_array_equal(to_numpy(loaded(ids)), expected)
    assert again.most_similar("paris", 2) == layer.most_similar("paris", 2)


def test_direct_int8_keras_round_trip(vectors_file, tmp_path):
    layer = _load(vectors_file, VOCABULARY, quantize="int8")
    model = keras.Sequential([keras.Input((2,), dtype="int32"), layer])
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    again = keras.saving.load_model(path).layers[0]
    for a, b in zip(_stored(layer), _stored(again)):
        np.testing.assert_array_equal(a, b)
    assert again.vocabulary == VOCABULARY


def test_config_keeps_quantization_and_lora(vectors_file):
    config_ = keras.quantizers.Int8QuantizationConfig(
        weight_quantizer=keras.quantizers.AbsMaxQuantizer(axis=-1))
    layer = _load(vectors_file, VOCABULARY, lora_rank=2, lora_alpha=4.0,
                  quantization_config=config_)
    config = layer.get_config()
    assert config["lora_rank"] == 2 and config["lora_alpha"] == 4.0
    assert config["quantization_config"] is not None
    clone = kel.PretrainedEmbedding.from_config(config)
    assert clone.lora_rank == 2 and clone.lora_alpha == 4.0
    assert isinstance(clone.quantization_config,
                      keras.quantizers.Int8QuantizationConfig)
    assert clone.vocabulary == VOCABULARY
    direct = _load(vectors_file, VOCABULARY, quantize="int8", lora_rank=2)
    assert direct.lora_enabled and direct.quantization_mode == "int8"
    clone = kel.PretrainedEmbedding.from_config(direct.get_config())
    clone.build()
    assert clone.quantization_mode == "int8" and clone.lora_enabled


def test_direct_int8_variable_adopts_the_table_without_a_copy(
        vectors_file, monkeypatch):
    """The int8 table parsed from the file becomes the variable's buffer on
    every backend (JAX's `device_put(may_alias=True)`, TensorFlow's DLPack,
    `torch.from_numpy`): no second copy of it exists while the layer is
    built. A byte written into the NumPy table shows in the variable."""
    from keras_embedlab.layers.pretrained import int8

    tables = []

    def recording(*args, **kwargs):
        q, scale, coverage = _quantized.load_int8(*args, **kwargs)
        tables.append((q, q.copy()))
        return q, scale, coverage

    monkeypatch.setattr(int8, "load_int8", recording)
    layer = _load(vectors_file, VOCABULARY, quantize="int8")
    table, values = tables[0]
    np.testing.assert_array_equal(to_numpy(layer._embeddings), values)
    if "cpu" not in str(layer._embeddings.value.device).lower():
        pytest.skip("the variable is on an accelerator: a copy in its "
                    "memory, by design")
    if keras.backend.backend() == "jax":
        value = layer._embeddings.value
        assert value.unsafe_buffer_pointer() == table.ctypes.data
    table[2, 3] = values[2, 3] ^ 0x55  # Aliased: the variable sees it.
    values[2, 3] = table[2, 3]
    np.testing.assert_array_equal(to_numpy(layer._embeddings), values)


def test_int8_loader_keeps_no_dictionary_of_the_file_words(tmp_path,
                                                          monkeypatch):
    """Reading into the int8 table, the loader's own memory beyond the
    table is one dictionary over the vocabulary (token -> row) and tens of
    bytes a token: no second dictionary of the words kept (the duplicate
    rule reads flags on the first), nor those words' strings. Measured by
    `tracemalloc` with small reads, so that a chunk's parse temporaries
    are negligible."""
    import tracemalloc

    n = 20_000
    tokens = [f"word{i}" for i in range(n)]
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"word{i} 0.5 -1 {i % 7}\n"
                            for i in range(n + n // 4)))
    monkeypatch.setattr(_quantized, "READ_BYTES", 1 << 12)
    tracemalloc.start()
    try:
        index = {token: i for i, token in enumerate(tokens)}
        dictionary = tracemalloc.get_traced_memory()[0]
        del index
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        q, scale, coverage = _quantized.load_int8(str(path), tokens, 1e-7,
                                                  verbose=0)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert coverage.found == n and q.shape == (n, 3)
    # Measured: about 42 bytes a token besides the dictionary (row
    # indices, flags, the OOV statistics); 160 more before (a dictionary
    # of the words kept and their strings).
    assert peak < q.nbytes + scale.nbytes + dictionary + 80 * n, (
        peak, dictionary)
