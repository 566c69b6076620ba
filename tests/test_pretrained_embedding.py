"""PretrainedEmbedding: vectors aligned to a Keras vocabulary."""

import builtins
import inspect
import io
import os
import re
from contextlib import redirect_stdout

import keras
import numpy as np
import pytest
from helpers import assert_equal, to_numpy

import keras_embedlab as kel

WORDS = ["paris", "london", "king", "queen", "the", "a"]
MATRIX = np.array(
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.1, 0.0], [0.8, 0.2, 0.1],
     [0.1, 0.1, 0.9], [0.2, -0.1, 0.7]],
    dtype="float32",
)
VOCABULARY = ["", "[UNK]", "Paris", "london", "king", "queen", "nowhere",
              "THE"]


@pytest.fixture
def glove_file(tmp_path):
    path = tmp_path / "vectors.txt"
    kel.Vectors(WORDS, MATRIX).save(str(path), format="glove")
    return str(path)


def row_of(word):
    return MATRIX[WORDS.index(word)]


def quiet(fn, *args, **kwargs):
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        result = fn(*args, **kwargs)
    return result, buffer.getvalue()


def test_from_file_aligns_to_the_vocabulary(glove_file):
    layer, printed = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                           vocabulary=VOCABULARY)
    assert isinstance(layer, kel.LookupEmbedding)
    assert layer.vocabulary == VOCABULARY
    table = to_numpy(layer.embeddings)
    assert table.shape == (8, 3)
    np.testing.assert_array_equal(table[0], np.zeros(3))  # "" is padding
    np.testing.assert_array_equal(table[2], row_of("paris"))  # lowercase
    np.testing.assert_array_equal(table[3], row_of("london"))
    np.testing.assert_array_equal(table[4], row_of("king"))
    np.testing.assert_array_equal(table[7], row_of("the"))
    assert np.isfinite(table).all()
    assert table[[1, 6]].any(axis=1).all()  # [UNK], missing: random rows
    assert layer.coverage == (5, 6, 2, ["nowhere"])
    assert layer.coverage.found == 5 and layer.coverage.lowercase == 2
    # The 8 tokens but "" and "[UNK]", as the line says.
    assert printed.strip() == ("found 5 of 6 tokens (83.3%), 2 via "
                               "lowercase (not counting '' and '[UNK]')")
    assert layer.mask_zero is True
    assert layer.trainable is False
    ids = np.array([[4, 2, 0]])
    assert_equal(layer(ids), table[ids])
    assert_equal(layer.compute_mask(ids), ids != 0)


def test_without_lowercase_fallback(glove_file):
    layer, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                     vocabulary=VOCABULARY, lowercase_fallback=False,
                     oov="zeros")
    assert layer.coverage.found == 3
    assert layer.coverage.missing == ["Paris", "nowhere", "THE"]
    np.testing.assert_array_equal(to_numpy(layer.embeddings)[2], np.zeros(3))


@pytest.mark.parametrize("oov", ["random", "zeros", "mean"])
def test_oov_initialisation(glove_file, oov):
    vocabulary = ["king", "queen", "[UNK]", "zzz", "yyy"]
    layer, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                     vocabulary=vocabulary, oov=oov)
    table = to_numpy(layer.embeddings)
    found = MATRIX[[2, 3]]
    assert np.isfinite(table).all()
    oov_rows = table[2:]
    if oov == "zeros":
        np.testing.assert_array_equal(oov_rows, 0)
    elif oov == "mean":
        np.testing.assert_allclose(oov_rows, np.tile(found.mean(0), (3, 1)),
                                   atol=1e-7)
    else:
        assert len({tuple(r) for r in oov_rows}) == 3
        again, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                         vocabulary=vocabulary, oov=oov)
        np.testing.assert_array_equal(to_numpy(again.embeddings), table)
        other, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                         vocabulary=vocabulary, oov=oov, seed=7)
        assert not np.array_equal(to_numpy(other.embeddings)[2:], oov_rows)
    assert layer.mask_zero is False  # the vocabulary does not start with ""


def test_random_oov_follows_the_found_statistics():
    rng = np.random.default_rng(0)
    matrix = rng.normal(0.5, 2.0, size=(400, 50)).astype("float32")
    words = [f"w{i}" for i in range(400)]
    vocabulary = words + [f"missing{i}" for i in range(400)]
    layer, _ = quiet(kel.PretrainedEmbedding.from_vectors,
                     kel.Vectors(words, matrix), vocabulary=vocabulary)
    oov_rows = to_numpy(layer.embeddings)[400:]
    assert abs(oov_rows.mean() - matrix.mean()) < 0.05
    assert abs(oov_rows.std() - matrix.std()) < 0.05


def test_vocabulary_sources(glove_file, tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("king\nqueen\nParis\n", encoding="utf-8")
    from_path, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                         vocabulary=str(path))
    assert from_path.vocabulary == ["king", "queen", "Paris"]

    lookup = keras.layers.StringLookup(vocabulary=["king", "queen"])
    from_lookup, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                           vocabulary=lookup)
    assert from_lookup.vocabulary == ["[UNK]", "king", "queen"]
    ids = lookup(np.array(["queen", "king", "nobody"]))
    assert_equal(from_lookup(ids)[:2], MATRIX[[3, 2]])

    vectorizer = keras.layers.TextVectorization()
    vectorizer.adapt(["the king and the queen", "paris"])
    from_text, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                         vocabulary=vectorizer)
    assert from_text.vocabulary == vectorizer.get_vocabulary()
    assert from_text.vocabulary[:2] == ["", "[UNK]"]
    assert from_text.mask_zero is True
    tokens = to_numpy(vectorizer(["the queen"]))[0]
    assert_equal(from_text(tokens), MATRIX[[4, 3]])

    everything, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file)
    assert everything.vocabulary == WORDS
    assert_equal(everything.embeddings, MATRIX)
    limited, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file, limit=2)
    assert limited.vocabulary == WORDS[:2]


def test_from_vectors_and_layer_kwargs():
    layer, _ = quiet(kel.PretrainedEmbedding.from_vectors,
                     kel.Vectors(WORDS, MATRIX), vocabulary=["", "king"],
                     trainable=True, mask_zero=False, invalid_ids="zeros",
                     name="glove")
    assert layer.trainable and not layer.mask_zero
    assert layer.name == "glove" and layer.invalid_ids == "zeros"
    assert_equal(layer(np.array([1, 9])), np.stack([row_of("king"),
                                                     np.zeros(3)]))


def test_frozen_in_model_summary(glove_file):
    layer, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                     vocabulary=VOCABULARY)
    model = keras.Sequential([keras.Input((4,), dtype="int32"), layer])
    text, _ = quiet(lambda: quiet(model.summary)[1])
    assert re.search(r"Non-trainable params: 24\b", text)
    assert re.search(r"Trainable params: 0\b", text)


def test_most_similar(glove_file):
    layer, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                     vocabulary=["", "[UNK]"] + WORDS, oov="zeros")
    result = layer.most_similar("king", k=2)
    assert [w for w, _ in result] == ["paris", "queen"]
    king, queen = row_of("king"), row_of("queen")
    expected = king @ queen / np.linalg.norm(king) / np.linalg.norm(queen)
    assert result[1][1] == pytest.approx(expected, rel=1e-6)
    by_vector = layer.most_similar(np.array([0.0, 0.0, 1.0]), k=1)
    assert by_vector[0][0] == "the"
    with pytest.raises(KeyError, match="'berlin' is not in"):
        layer.most_similar("berlin")
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        layer.most_similar(np.ones(4))


def test_saved_model_loads_without_the_file(glove_file, tmp_path):
    layer, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                     vocabulary=VOCABULARY)
    inputs = keras.Input((3,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    ids = np.array([[2, 4, 7]], "int32")
    expected = model.predict(ids, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    os.remove(glove_file)
    loaded = keras.saving.load_model(path)
    restored = loaded.layers[1]
    assert isinstance(restored, kel.PretrainedEmbedding)
    assert restored.vocabulary == VOCABULARY
    assert restored.coverage == layer.coverage
    assert restored.trainable is False
    # The vocabulary is data in the config (clone_model and serialize keep
    # it) and an asset of the archive; both agree.
    assert restored.get_config()["vocabulary"] == VOCABULARY
    assert_equal(loaded.predict(ids, verbose=0), expected)
    assert restored.most_similar("king", k=1)[0][0] == "Paris"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"oov": "nan"}, "`oov` must be one of 'random', 'zeros', 'mean'"),
        ({"vocabulary": ["king", "king"]}, "token 'king' twice"),
        ({"vocabulary": []}, "`vocabulary` is empty"),
        ({"vocabulary": ["x", "y"]}, "None of the 2 vocabulary tokens has"),
        ({"vocabulary": [1, 2]}, "only strings"),
    ],
)
def test_bad_arguments(glove_file, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        quiet(kel.PretrainedEmbedding.from_file, glove_file, **kwargs)


def test_vocabulary_length_must_match_input_dim():
    with pytest.raises(ValueError, match="2 tokens but input_dim=3"):
        kel.PretrainedEmbedding(3, 2, vocabulary=["a", "b"])


def test_invalid_ids_behave_like_lookup_embedding(glove_file):
    layer, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                     vocabulary=VOCABULARY)
    with pytest.raises(ValueError, match=r"invalid id.*8.*\[0, 8\)"):
        layer(np.array([8]))


def test_most_similar_skips_missing_words_and_needs_a_vocabulary(glove_file):
    layer, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                     vocabulary=WORDS + ["zzz"])
    # "zzz" has a random OOV row: never a neighbour, whatever its cosine.
    layer.embeddings.assign(np.vstack([MATRIX, row_of("king")]))
    neighbours = [w for w, _ in layer.most_similar("king", k=10)]
    assert neighbours[:2] == ["paris", "queen"]
    assert sorted(neighbours) == sorted(set(WORDS) - {"king"})
    bare = kel.PretrainedEmbedding(2, 3, weights=np.ones((2, 3)))
    with pytest.raises(ValueError, match="has no vocabulary"):
        bare.most_similar(np.ones(3))


@pytest.fixture
def opened(monkeypatch):
    """Paths opened (builtins/io `open`, `os.open`) once the test starts."""
    paths = []
    real_open, real_os_open = open, os.open

    def spy_open(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)):
            paths.append(os.path.realpath(os.fsdecode(file)))
        return real_open(file, *args, **kwargs)

    def spy_os_open(file, *args, **kwargs):
        paths.append(os.path.realpath(os.fsdecode(file)))
        return real_os_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return paths


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"oov": "nan"}, "Received: oov='nan'"),
        ({"oov": ["zeros"]}, "Received: oov=['zeros']"),
        ({"lowercase_fallback": "yes"},
         "`lowercase_fallback` must be True or False. Received: "
         "lowercase_fallback='yes'"),
        ({"trainable": 1}, "`trainable` must be True or False"),
        ({"seed": -1}, "`seed` must be None or a non-negative integer (it "
         "seeds oov='random'). Received: seed=-1"),
        ({"seed": 1.5}, "Received: seed=1.5 (of type float)"),
        ({"seed": True}, "Received: seed=True (of type bool)"),
        ({"verbose": "loud"}, "Received: verbose='loud'"),
        ({"vocabulary": ["king", "king"]}, "token 'king' twice"),
        ({"vocabulary": []}, "`vocabulary` is empty"),
        ({"vocabulary": 7}, "Received: vocabulary=7"),
        ({"mask_zero": "true"}, "Received: mask_zero='true'"),
        ({"invalid_ids": "wrap"}, "Received: invalid_ids='wrap'"),
        ({"combiner": "max"}, "Received: combiner='max'"),
        ({"max_norm": -1.0}, "Received: max_norm=-1.0"),
        ({"norm_type": 0}, "Received: norm_type=0"),
        ({"padding_idx": -1}, "Received: padding_idx=-1"),
        ({"sparse": "no"}, "Received: sparse='no'"),
        ({"name": 3}, "`name` must be None or a string. Received: name=3"),
        ({"embeddings_initializer": "nonsense"},
         "`embeddings_initializer`"),
        ({"embeddings_regularizer": "nonsense"},
         "`embeddings_regularizer`"),
        ({"weights": np.ones((8, 3))},
         "`weights` is set by from_file (from the vectors and the "
         "vocabulary)"),
        ({"input_dim": 8}, "`input_dim` is set by from_file"),
        ({"coverage": None}, "`coverage` is set by from_file"),
        ({"embedding_dim": 3}, "from_file got an unexpected keyword "
         "argument `embedding_dim`"),
        ({"format": "glov"}, "format"),
        ({"limit": 0}, "limit"),
        ({"encoding": "no-such-codec"}, "encoding"),
        ({"unicode_errors": "skip"}, "unicode_errors"),
    ],
)
def test_from_file_checks_every_argument_before_reading(glove_file, opened,
                                                       kwargs, message):
    kwargs = {"vocabulary": VOCABULARY, **kwargs}
    with pytest.raises(ValueError) as info:
        quiet(kel.PretrainedEmbedding.from_file, glove_file, **kwargs)
    assert message in str(info.value)
    assert os.path.realpath(glove_file) not in opened


def test_from_file_checks_the_path_before_anything(tmp_path, opened):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("king\n", encoding="utf-8")
    opened.clear()
    with pytest.raises(ValueError, match=r"`path` must be the path of a "
                       r"vectors file.*Received: path=3 \(of type int\)"):
        kel.PretrainedEmbedding.from_file(3, vocabulary=str(vocab))
    assert opened == []


def test_from_vectors_checks_its_arguments():
    vectors = kel.Vectors(WORDS, MATRIX)
    for kwargs, message in [({"oov": "nan"}, "Received: oov='nan'"),
                            ({"seed": "x"}, "Received: seed='x'"),
                            ({"verbose": 2}, "Received: verbose=2"),
                            ({"weights": None}, "`weights` is set by "
                             "from_vectors")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            quiet(kel.PretrainedEmbedding.from_vectors, vectors,
                  vocabulary=["king"], **kwargs)


HUGE = np.array([[3.0e38, -3.0e38, 3.0e38], [3.0e38, 3.0e38, -3.0e38],
                 [3.3e38, 3.0e38, 3.0e38]], dtype="float32")
FLOAT32_MAX = np.finfo(np.float32).max


@pytest.mark.parametrize("oov", ["mean", "random"])
def test_oov_statistics_do_not_overflow_near_float32_max(oov):
    # Sums of values near 3e38 overflow in float32: the statistics are
    # taken in float64, and the rows stay finite.
    words = ["a", "b", "c"]
    layer, _ = quiet(kel.PretrainedEmbedding.from_vectors,
                     kel.Vectors(words, HUGE),
                     vocabulary=words + ["[UNK]", "zz"], oov=oov)
    table = to_numpy(layer.embeddings)
    assert np.isfinite(table).all()
    np.testing.assert_array_equal(table[:3], HUGE)
    if oov == "mean":
        expected = HUGE.astype("float64").mean(axis=0)
        np.testing.assert_allclose(table[3], expected, rtol=1e-6)
        np.testing.assert_array_equal(table[4], table[3])
        assert table[3, 0] == pytest.approx(3.1e38, rel=1e-6)
    else:
        assert (np.abs(table[3:]) <= FLOAT32_MAX).all()
        assert not np.array_equal(table[3], table[4])
        # Drawn with the float64 statistics: mean ~1.57e38, std ~2.5e38.
        assert np.abs(table[3:]).max() > 1e37


def test_oov_statistics_ignore_non_finite_values():
    matrix = np.array([[1.0, np.nan], [3.0, 4.0]], dtype="float32")
    for oov in ["mean", "random"]:
        layer, _ = quiet(kel.PretrainedEmbedding.from_vectors,
                         kel.Vectors(["a", "b"], matrix),
                         vocabulary=["a", "b", "zz"], oov=oov)
        row = to_numpy(layer.embeddings)[2]
        assert np.isfinite(row).all()
        if oov == "mean":
            np.testing.assert_array_equal(row, [2.0, 4.0])


def test_no_overlap_names_the_file_and_shows_tokens_of_both(glove_file):
    vocabulary = ["", "[UNK]", "Xylophone", "zebra_1", "qq", "r2", "s3", "t4"]
    with pytest.raises(ValueError) as info:
        quiet(kel.PretrainedEmbedding.from_file, glove_file,
              vocabulary=vocabulary)
    message = str(info.value)
    # The same tokens as the coverage line counts, and it says so.
    assert message.startswith("None of the 6 vocabulary tokens (not counting "
                              "'' and '[UNK]') has a vector in the file "
                              f"{glove_file!r}")
    assert "(nor in lowercase)" in message
    # Examples of each side: the vocabulary's (not the special tokens) and
    # the file's first words.
    assert ("The vocabulary has 'Xylophone', 'zebra_1', 'qq', 'r2', 's3', "
            "...;") in message
    assert ("the file starts with 'paris', 'london', 'king', 'queen', "
            "'the', ...") in message
    with pytest.raises(ValueError) as info:
        quiet(kel.PretrainedEmbedding.from_vectors,
              kel.Vectors(WORDS[:2], MATRIX[:2]), vocabulary=["x", "y"],
              lowercase_fallback=False)
    message = str(info.value)
    assert message.startswith("None of the 2 vocabulary tokens has a vector "
                              "in the vectors:")
    assert "The vocabulary has 'x', 'y';" in message
    assert "the vectors start with 'paris', 'london'." in message


def test_most_similar_refuses_words_without_a_pretrained_vector(glove_file):
    layer, _ = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                     vocabulary=["", "[UNK]"] + WORDS + ["zzz"])
    with pytest.raises(ValueError) as info:
        layer.most_similar("zzz")
    message = str(info.value)
    assert "'zzz' had no vector in the vectors file" in message
    assert "layer.most_similar(vector)" in message
    for special in ["", "[UNK]"]:
        with pytest.raises(ValueError, match="is the (mask|OOV) token"):
            layer.most_similar(special)
    # The row itself can still be asked about, e.g. after fine-tuning.
    row = to_numpy(layer.embeddings)[layer.vocabulary.index("zzz")]
    assert len(layer.most_similar(row, k=3)) == 3


@pytest.mark.skipif(
    "nonfinite" not in inspect.signature(kel.load_vectors).parameters,
    reason="this load_vectors has no `nonfinite` option",
)
def test_from_file_forwards_nonfinite(tmp_path):
    path = tmp_path / "nan.txt"
    path.write_text("king 1.0 0.0\nqueen nan 1.0\nparis 0.0 2.0\n",
                    encoding="utf-8")
    vocabulary = ["king", "queen", "paris", "zzz"]
    with pytest.raises(ValueError, match="queen|line 2"):
        quiet(kel.PretrainedEmbedding.from_file, str(path),
              vocabulary=vocabulary)
    with pytest.warns(UserWarning):
        skipped, _ = quiet(kel.PretrainedEmbedding.from_file, str(path),
                           vocabulary=vocabulary, nonfinite="skip",
                           oov="mean")
    assert skipped.coverage.missing == ["queen", "zzz"]
    np.testing.assert_array_equal(to_numpy(skipped.embeddings)[[1, 3]],
                                  [[0.5, 1.0], [0.5, 1.0]])
    kept, _ = quiet(kel.PretrainedEmbedding.from_file, str(path),
                    vocabulary=vocabulary, nonfinite="keep", oov="mean")
    table = to_numpy(kept.embeddings)
    assert np.isnan(table[1, 0])  # kept as the file has it
    # The OOV statistics use the finite values only: column 1 is
    # mean(0, 1, 2).
    np.testing.assert_array_equal(table[3], [0.5, 1.0])
    with pytest.raises(ValueError, match="nonfinite"):
        quiet(kel.PretrainedEmbedding.from_file, str(path),
              vocabulary=vocabulary, nonfinite="drop")


def test_coverage_line_and_no_overlap_count_the_same_tokens(glove_file):
    # Only "[UNK]" here: the line names what it leaves out, nothing else.
    layer, printed = quiet(kel.PretrainedEmbedding.from_file, glove_file,
                           vocabulary=["[UNK]", "king", "nowhere"])
    assert printed.strip() == ("found 1 of 2 tokens (50.0%), 0 via lowercase "
                               "(not counting '[UNK]')")
    assert layer.coverage.total == 2
    with pytest.raises(ValueError, match=re.escape(
            "None of the 2 vocabulary tokens (not counting '[UNK]') has")):
        quiet(kel.PretrainedEmbedding.from_file, glove_file,
              vocabulary=["[UNK]", "qq", "rr"])


# fastText models (tests of the vectors themselves: test_fasttext_files.py)

def fasttext_file(tmp_path, words, matrix, **kwargs):
    from vector_helpers import fasttext_model

    path = tmp_path / "model.bin"
    path.write_bytes(fasttext_model(words, matrix, **kwargs))
    return str(path)


def test_fasttext_nonfinite_skip_counts_the_word_missing(tmp_path):
    # "dog"'s row holds a NaN: with "skip" it has no vector, so it is
    # missing, and "Dog" (not a word) takes its n-grams' vector.
    matrix = np.random.default_rng(1).normal(size=(2 + 50, 3))
    matrix[1, 0] = np.nan
    path = fasttext_file(tmp_path, ["cat", "dog"], matrix, minn=2, maxn=3)
    vectors = kel.load_vectors(path, nonfinite="skip")
    expected, _, _ = vectors.lookup(["cat", "Dog"])
    for vocabulary in (["", "cat", "dog"], ["", "cat", "Dog"]):
        with pytest.warns(UserWarning, match="NaN.*'dog'"):
            layer, _ = quiet(kel.PretrainedEmbedding.from_file, path,
                             vocabulary, nonfinite="skip", oov="zeros")
        table = to_numpy(layer.embeddings)
        assert np.isfinite(table).all()
        np.testing.assert_allclose(table[1], expected[0], rtol=1e-6)
        if vocabulary[2] == "dog":
            assert layer.coverage == (1, 2, 0, ["dog"])
            np.testing.assert_array_equal(table[2], 0)
        else:
            assert layer.coverage == kel.vectors.Coverage(2, 2, 0, [], 1)
            np.testing.assert_allclose(table[2], expected[1], rtol=1e-6)
    with pytest.warns(UserWarning, match="NaN.*'dog'"):
        layer, _ = quiet(kel.PretrainedEmbedding.from_vectors, vectors,
                         ["cat", "dog"], oov="zeros")
    assert layer.coverage.missing == ["dog"]


def test_fasttext_words_without_a_vector_are_missing_on_a_fresh_load(
        tmp_path):
    # maxn=0 (as supervised models): unseen words have no vector at all.
    matrix = np.array([[1.0, 2.0], [3.0, 4.0]])
    path = fasttext_file(tmp_path, ["cat", "dog"], matrix, maxn=0, bucket=0)
    layer, printed = quiet(kel.PretrainedEmbedding.from_file, path,
                           ["", "[UNK]", "notaword", "dog"], oov="zeros")
    assert layer.coverage == (1, 2, 0, ["notaword"])
    np.testing.assert_array_equal(to_numpy(layer.embeddings)[2:],
                                  [[0, 0], [3, 4]])
    with pytest.raises(ValueError, match=re.escape(
            "None of the 1 vocabulary tokens (not counting '' and '[UNK]') "
            "has a vector in the file")) as info:
        quiet(kel.PretrainedEmbedding.from_file, path,
              ["", "[UNK]", "notaword"])
    assert "the file starts with 'cat', 'dog'." in str(info.value)


def test_fasttext_repeated_word_from_file_without_vocabulary(tmp_path):
    matrix = np.arange(8, dtype=np.float32).reshape(4, 2)
    path = fasttext_file(tmp_path, ["the", "cat", "the", "dog"], matrix,
                         maxn=0, bucket=0)
    with pytest.warns(UserWarning, match=re.escape(
            "model.bin: the dictionary holds 1 repeated word(s); as in "
            "fastText, the last copy")):
        layer, _ = quiet(kel.PretrainedEmbedding.from_file, path)
    assert layer.vocabulary == ["cat", "the", "dog"]
    np.testing.assert_array_equal(to_numpy(layer.embeddings),
                                  matrix[[1, 2, 3]])


def test_fasttext_model_without_magic_number(tmp_path):
    gensim_utils = pytest.importorskip("gensim.test.utils")
    path = gensim_utils.datapath("non_ascii_fasttext.bin")
    vectors = kel.load_vectors(path)
    tokens = ["", vectors.words[3], "unseenword"]
    layer, printed = quiet(kel.PretrainedEmbedding.from_file, path, tokens)
    assert layer.coverage == kel.vectors.Coverage(2, 2, 0, [], 1)
    np.testing.assert_array_equal(to_numpy(layer.embeddings)[1:],
                                  vectors.lookup(tokens[1:])[0])
    # Subword vectors are computed in float: the int8 loader refuses it.
    with pytest.raises(ValueError, match="is a fastText model"):
        kel.PretrainedEmbedding.from_file(path, tokens, quantize="int8")


def test_fasttext_words_that_are_not_utf8_save_and_load(tmp_path):
    # Such words are kept as lone surrogates: the .keras file (config and
    # vocabulary asset) must hold them and give them back.
    gensim_utils = pytest.importorskip("gensim.test.utils")
    path = gensim_utils.datapath("pang_lee_polarity_fasttext.bin")
    tokens = ["", "[UNK]", "\udc97", "clich\udce9s", "the"]
    with pytest.warns(UserWarning, match="not valid UTF-8"):
        layer, _ = quiet(kel.PretrainedEmbedding.from_file, path, tokens)
    ids = keras.Input((2,), dtype="int32")
    model = keras.Model(ids, layer(ids))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.layers[1].vocabulary == tokens
    x = np.array([[2, 3], [4, 0]])
    np.testing.assert_array_equal(loaded.predict(x, verbose=0),
                                  model.predict(x, verbose=0))
