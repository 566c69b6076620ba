"""fastText `.bin` files people have: gensim's test models (pre-2017
models without a magic number, an empty word, words that are not UTF-8),
repeated words, models without n-grams, lookups from several threads and
non-finite rows. NumPy only; fastText (`fasttext-numpy2`) and gensim are
the oracles: fastText where it loads the file, gensim where it no longer
does.
"""

import pickle
import re
import sys
import threading
import warnings

import numpy as np
import pytest
from vector_helpers import (  # noqa: F401
    fasttext_model,
    seed_everything,
    write,
)

from keras_embedlab.vectors import (
    Coverage,
    FastTextVectors,
    VectorFileError,
    align,
    load_vectors,
)

# The code under test never reads KERAS_BACKEND: `make test` runs this
# module in its first backend's session only (pyproject.toml, markers).
pytestmark = pytest.mark.backend_independent

gensim_utils = pytest.importorskip("gensim.test.utils")
# Unseen words: ASCII, non-ASCII, shorter than minn, odd characters.
UNSEEN = ["unseen", "chats", "ĉeĥoslovakio", "日本語テキスト", "a", "é",
          "zz", "PARIS", "\x80", "😀x", "café" * 30, "<", ">"]


def datapath(name):
    return gensim_utils.datapath(name)


def fasttext_vector(model, word):
    """fastText's `get_word_vector` of `word`, given as the bytes fastText
    holds (a word that is not UTF-8 cannot be passed as str)."""
    import fasttext_pybind

    vector = fasttext_pybind.Vector(model.get_dimension())
    model.f.getWordVector(vector, word.encode("utf-8", "surrogateescape"))
    return np.array(vector)


# ------------------------------------- item 10: models without a magic number

@pytest.mark.parametrize("name", ["lee_fasttext.bin",
                                  "non_ascii_fasttext.bin"])
def test_pre_2017_models_equal_gensim(name):
    from gensim.models.fasttext import load_facebook_vectors

    path = datapath(name)
    with open(path, "rb") as f:
        assert f.read(4) != (793712314).to_bytes(4, "little")  # no magic
    expected = load_facebook_vectors(path)
    for format in ("auto", "fasttext-binary"):
        vectors = load_vectors(path, format=format)
        assert isinstance(vectors, FastTextVectors)
        assert vectors.words == list(expected.index_to_key)
        assert (vectors.minn, vectors.maxn) == (expected.min_n,
                                                expected.max_n)
    # gensim gives "</s>" n-grams, fastText does not.
    tokens = [w for w in vectors.words + UNSEEN if w != "</s>"]
    matrix, _, found = vectors.lookup(tokens)
    assert found.all()
    # float32 sums in another order: values up to 2.5, 1e-6 apart.
    np.testing.assert_allclose(matrix, expected[tokens], rtol=0, atol=1e-5)


def test_pre_2017_layout_reads_as_the_current_one(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(2 + 50, 4))
    words = ["chat", "café"]
    new = load_vectors(write(tmp_path, fasttext_model(words, matrix),
                             "new.bin"))
    old = load_vectors(write(tmp_path, fasttext_model(words, matrix,
                                                      old=True), "old.bin"))
    tokens = words + UNSEEN
    np.testing.assert_array_equal(old.lookup(tokens)[0],
                                  new.lookup(tokens)[0])


# Under 76 bytes the file cannot be told from others; from there on, the
# header and dictionary say what it is. The dictionary starts at 76 ("chat"
# takes 14 bytes), the input matrix at 90, its values at 106.
@pytest.mark.parametrize("cut, problem", [
    (80, "byte offset 76: dictionary entry 1 of 1: no NUL ends the word"),
    (95, "byte offset 90: the file is truncated: it ends inside the input "
         "matrix header"),
    (200, "byte offset 106: the file is truncated: the input matrix"),
])
def test_pre_2017_model_cut_short_says_what_it_is(tmp_path, cut, problem):
    data = fasttext_model(["chat"], np.ones((11, 3)), old=True)
    path = write(tmp_path, data[:cut], "old.bin")
    with pytest.raises(VectorFileError) as error:
        load_vectors(path)
    message = str(error.value)
    assert f"old.bin: {problem}" in message
    assert "layout before fastText's magic number" in message


# ----------------------------- item 13: files fastText reads that we refused

def test_empty_word_reads_as_fasttext():
    fasttext = pytest.importorskip("fasttext")
    path = datapath("toy-model-pretrained.bin")
    model = fasttext.load_model(path)
    vectors = load_vectors(path)
    assert vectors.words == model.words and "" in vectors.words
    for word in vectors.words + UNSEEN:
        np.testing.assert_allclose(vectors[word], fasttext_vector(model, word),
                                   rtol=0, atol=1e-6, err_msg=repr(word))


def test_words_that_are_not_utf8_read_as_fasttext():
    fasttext = pytest.importorskip("fasttext")
    path = datapath("pang_lee_polarity_fasttext.bin")
    model = fasttext.load_model(path)
    with pytest.warns(UserWarning, match=re.escape(
            "pang_lee_polarity_fasttext.bin: 5 dictionary word(s) are not "
            "valid UTF-8; the first, b'\\x97', at byte offset 2,173.")):
        vectors = load_vectors(path)
    # The words fastText holds, byte for byte.
    raw = model.f.getVocab("surrogateescape")[0]
    assert vectors.words == raw and "\udc97" in vectors
    for word in vectors.words[::7] + ["\udc97", "clich\udce9s"] + UNSEEN:
        expected = fasttext_vector(model, word)
        if not expected.any():  # maxn=0: an unseen word has no vector
            assert word not in vectors
            with pytest.raises(KeyError, match="no n-grams"):
                vectors[word]
            continue
        np.testing.assert_allclose(vectors[word], expected, rtol=0,
                                   atol=1e-6, err_msg=repr(word))
    with warnings.catch_warnings():  # Asked for: no warning.
        warnings.simplefilter("error")
        replaced = load_vectors(path, unicode_errors="replace")
    assert replaced.words == model.get_words(on_unicode_error="replace")


# ------------------------------------------- item 12: a word held twice

def test_repeated_word_last_copy_wins_with_one_warning(tmp_path):
    # No n-grams: a word's vector is its row.
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    data = fasttext_model(["the", "cat", "the", "dog"], matrix, maxn=0,
                          bucket=0)
    path = write(tmp_path, data, "twice.bin")
    # Entries from byte offset 92: "the\0" + 9 bytes, "cat\0" + 9 bytes.
    with pytest.warns(UserWarning, match=re.escape(
            "twice.bin: the dictionary holds 1 repeated word(s); as in "
            "fastText, the last copy of each is the one used (its row), and "
            "`words` lists it once, there. The first is 'the': entries 1 and "
            "3 (byte offsets 92 and 118).")):
        vectors = load_vectors(path)
    assert vectors.words == ["cat", "the", "dog"] and len(vectors) == 3
    assert vectors.index("the") == 1
    np.testing.assert_array_equal(vectors["the"], matrix[2])
    np.testing.assert_array_equal(vectors.matrix, matrix[[1, 2, 3]])
    vectors.save(tmp_path / "twice.vec")
    assert load_vectors(tmp_path / "twice.vec").words == vectors.words
    fasttext = pytest.importorskip("fasttext")
    model = fasttext.load_model(str(path))
    np.testing.assert_array_equal(model.get_word_vector("the"), matrix[2])


# -------------------------------- item 11: words without a vector, fresh load

def test_no_vector_is_a_key_error_on_a_fresh_load(tmp_path):
    # maxn=0, as supervised models: unseen words have no vector.
    data = fasttext_model(["cat", "dog"], np.ones((2, 3)), maxn=0, bucket=0)
    path = write(tmp_path, data, "m.bin")
    vectors = load_vectors(path, vocabulary=["notaword"])
    matrix, whole, found = vectors.lookup(["notaword", "cat", ""])
    np.testing.assert_array_equal(matrix, [[0, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert whole.tolist() == [False, True, False]
    assert found.tolist() == [False, True, False]
    for word in ("notaword", ""):
        with pytest.raises(KeyError, match="no n-grams"):
            load_vectors(path)[word]
    # gensim's toy model (minn=3): "" is "<>", without an n-gram.
    with pytest.raises(KeyError, match="no n-gram of 3 to 6"):
        load_vectors(datapath("toy-model.bin"))[""]


# ------------------------------ issue 21: the header record's rename


def test_vectors_pickled_under_the_old_header_name_unpickle(tmp_path):
    """A `FastTextVectors` pickled when its header class was
    `_fasttext.Model` (now `ModelHeader`) still unpickles and looks up."""
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = fasttext_model(["cat", "dog"], matrix, maxn=0, bucket=0)
    vectors = load_vectors(write(tmp_path, data, "m.bin"))
    new = pickle.dumps(vectors, protocol=0)  # GLOBAL: "module\nname\n"
    assert new.count(b"._fasttext\nModelHeader\n") == 1
    old = new.replace(b"._fasttext\nModelHeader\n", b"._fasttext\nModel\n")
    again = pickle.loads(old)
    np.testing.assert_array_equal(again["dog"], matrix[1])
    assert again.words == ["cat", "dog"]


# ----------------------------------------- item 6: lookups from threads

def test_lookups_from_threads_give_the_single_threaded_vectors(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(2 + 997, 4)).astype(np.float32)
    path = write(tmp_path, fasttext_model(["cat", "dog"], matrix, minn=2,
                                          maxn=3), "m.bin")
    words = [f"{i}x" for i in range(1200)]  # unseen: n-gram vectors
    expected = dict(zip(words, load_vectors(path).lookup(words)[0]))
    vectors = load_vectors(path)  # Fresh: nothing computed yet.
    results, errors = [], []
    start = threading.Barrier(4)

    def work(seed):
        order = np.random.default_rng(seed).permutation(len(words))
        start.wait()
        try:
            for i in range(0, len(order), 2):  # Small, overlapping lookups.
                batch = [words[j] for j in order[i:i + 2]]
                results.append((batch, vectors.lookup(batch)[0]))
        except Exception as error:  # e.g. an index past the cache
            errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # Switch threads as often as possible.
    try:
        threads = [threading.Thread(target=work, args=(k,))
                   for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors and len(results) == 4 * 600
    wrong = [word for batch, rows in results
             for word, row in zip(batch, rows)
             if not np.array_equal(row, expected[word])]
    assert not wrong, f"{len(wrong)} of {4 * len(words)} lookups wrong"


# ------------------------------------ item 1: nonfinite="skip" with a model

def skip_model(tmp_path):
    """"dog"'s row holds a NaN; no n-gram of "dog" does."""
    matrix = np.random.default_rng(1).normal(size=(2 + 50, 3))
    matrix[1, 0] = np.nan
    path = write(tmp_path, fasttext_model(["cat", "dog"], matrix, minn=2,
                                          maxn=3), "nan.bin")
    return path, matrix


def test_nonfinite_skip_leaves_a_word_without_a_vector(tmp_path):
    path, _ = skip_model(tmp_path)
    with pytest.raises(VectorFileError, match="'dog' has a NaN"):
        load_vectors(path)["dog"]
    vectors = load_vectors(path, nonfinite="skip")
    assert "dog" in vectors and vectors.words == ["cat", "dog"]
    with pytest.warns(UserWarning, match="1 token.*NaN.*'dog'"):
        matrix, whole, found = vectors.lookup(["dog", "Dog", "cat"])
    assert whole.tolist() == [True, False, True]
    assert found.tolist() == [False, True, True]
    np.testing.assert_array_equal(matrix[0], 0)
    assert np.isfinite(matrix).all()
    with pytest.raises(KeyError, match="left out by nonfinite='skip'"):
        vectors["dog"]
    # A skipped word is missing; "Dog" (no word) takes its n-grams' vector.
    table, coverage = align(vectors, ["", "cat", "dog", "Dog"], oov="zeros")
    assert coverage == Coverage(2, 3, 0, ["dog"], subwords=1)
    np.testing.assert_array_equal(table[[0, 2]], 0)
    np.testing.assert_array_equal(table[[1, 3]], matrix[[2, 1]])
    vectors.save(tmp_path / "out.vec")  # Without the skipped word.
    assert load_vectors(tmp_path / "out.vec").words == ["cat"]



def test_words_that_are_not_utf8_save_as_their_bytes(tmp_path):
    # Kept as lone surrogates, such words are written back as the bytes
    # the model held (UTF-8 cannot encode a surrogate).
    path = datapath("pang_lee_polarity_fasttext.bin")
    with pytest.warns(UserWarning, match="not valid UTF-8"):
        vectors = load_vectors(path)
    out = tmp_path / "out.vec"
    vectors.save(out, format="word2vec-text")
    lines = out.read_bytes().splitlines()
    tokens = [line.split(b" ", 1)[0] for line in lines[1:]]
    assert b"\x97" in tokens and b"clich\xe9s" in tokens
    assert len(tokens) == len(vectors.words)
    row = tokens.index(b"\x97") + 1
    np.testing.assert_allclose(
        np.array(lines[row].split()[1:], dtype=np.float32),
        vectors["\udc97"], rtol=1e-6)
