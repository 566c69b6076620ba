"""fastText `.bin` models: vectors equal to fastText's and gensim's, for
words in and out of the model, and `PretrainedEmbedding` from a model.

The models are trained here, tiny, once per session, with the `fasttext`
package (`fasttext-numpy2`, a test extra) and gensim.
"""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_embedlab as kel
from keras_embedlab.vectors import FastTextVectors, load_vectors

fasttext = pytest.importorskip("fasttext")

WORDS = ["chat", "chien", "maison", "café", "naïve", "東京", "über", "ab",
         "x", "été", "garçon", "Paris", "déjà-vu", "ñandú"]
# Not in any model: unseen, non-ASCII, shorter than minn, odd bytes.
UNSEEN = ["unseen", "chats", "ĉeĥoslovakio", "日本語テキスト", "a", "é",
          "", "</s>", "<", ">", "zz", "PARIS", "\x80", "😀x", "café" * 30]


def corpus(path, seed=0, labels=False):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(400):
        line = " ".join(rng.choice(WORDS, 10))
        if labels:
            line = f"__label__{rng.integers(3)} {line}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


TRAIN = """
import sys, fasttext
kind, data, path, kwargs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
function = getattr(fasttext, "train_" + kind)
function(data, thread=1, verbose=0, **eval(kwargs)).save_model(path)
"""


def train(kind, data, path, **kwargs):
    """Trains a model with `fasttext` in a fresh process and loads it.

    fasttext-numpy2's trainer raises "Encountered NaN" on about a third of
    the runs on a corpus this small, whatever the data or seed, and then on
    every later try in the same process (it depends on the process, not
    the input): each try runs in its own process.
    """
    for attempt in range(ATTEMPTS):
        result = subprocess.run(
            [sys.executable, "-c", TRAIN, kind, data, str(path),
             repr(kwargs)], capture_output=True, text=True, timeout=120)
        if result.returncode == 0:
            model = fasttext.load_model(str(path))
            args = model.f.getArgs()
            model.minn, model.maxn = args.minn, args.maxn
            return model
        if "Encountered NaN" not in result.stderr:
            break
    raise RuntimeError(f"fasttext training failed:\n{result.stderr[-2000:]}")


ATTEMPTS = 10


CONFIGS = {
    "skipgram-2-4": dict(model="skipgram", minn=2, maxn=4, bucket=3000),
    "cbow-3-6": dict(model="cbow", minn=3, maxn=6, bucket=5000),
}


@pytest.fixture(scope="session", params=sorted(CONFIGS))
def trained(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fasttext")
    data = corpus(folder / "corpus.txt")
    path = folder / "model.bin"
    model = train("unsupervised", data, path, dim=10, epoch=3, lr=0.05,
                  minCount=1, **CONFIGS[request.param])
    return model, path


@pytest.fixture(scope="session")
def supervised(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fasttext_supervised")
    data = corpus(folder / "labelled.txt", seed=1, labels=True)
    path = folder / "supervised.bin"
    # Hierarchical softmax: the default softmax loss gives "Encountered
    # NaN" on almost every run of fasttext-numpy2 on this tiny corpus.
    try:
        model = train("supervised", data, path, dim=6, epoch=2, loss="hs")
    except RuntimeError as error:
        if "Encountered NaN" not in str(error):
            raise
        # The external trainer's flakiness, not our reader: say so.
        pytest.skip("fasttext-numpy2's supervised trainer gave 'Encountered "
                    f"NaN' on all {ATTEMPTS} tries in this run: supervised "
                    "model reading is not checked this time")
    return model, path


def test_vectors_equal_fasttext_for_every_word(trained):
    model, path = trained
    vectors = load_vectors(path)
    assert isinstance(vectors, FastTextVectors)
    assert vectors.words == model.words and vectors.dim == 10
    assert (vectors.minn, vectors.maxn) == (model.minn, model.maxn)
    for word in model.words + UNSEEN:
        expected = model.get_word_vector(word)
        assert (word in vectors) == (word in model.words)
        if word == "" and model.minn == 3:  # "<>": no n-gram of 3 chars
            assert not np.any(expected)
            with pytest.raises(KeyError, match="has no vector"):
                vectors[word]
            continue
        np.testing.assert_allclose(vectors[word], expected, rtol=0,
                                   atol=1e-6, err_msg=repr(word))


def test_lookup_of_many_words_at_once(trained):
    model, path = trained
    tokens = UNSEEN + model.words + ["chat", "unseen"]
    matrix, whole, found = load_vectors(path).lookup(tokens)
    expected = np.stack([model.get_word_vector(t) for t in tokens])
    np.testing.assert_allclose(matrix, expected, rtol=0, atol=1e-6)
    assert whole.tolist() == [t in model.words for t in tokens]
    # "" is "<>": no n-gram of 3 characters.
    assert found.tolist() == [model.minn == 2 or t != "" for t in tokens]


def test_vocabulary_is_computed_at_load_and_needs_no_file(trained,
                                                          tmp_path):
    model, path = trained
    copy = tmp_path / "copy.bin"
    shutil.copyfile(path, copy)
    tokens = ["chat", "unseen", "東京都", "x"]
    vectors = load_vectors(copy, vocabulary=tokens)
    os.remove(copy)
    matrix, whole, found = vectors.lookup(tokens)
    expected = np.stack([model.get_word_vector(t) for t in tokens])
    np.testing.assert_allclose(matrix, expected, rtol=0, atol=1e-6)
    assert whole.tolist() == [True, False, False, True]
    with pytest.raises(FileNotFoundError):
        vectors["other"]


def test_matrix_and_save(trained, tmp_path):
    model, path = trained
    vectors = load_vectors(path, format="fasttext-binary")
    expected = np.stack([model.get_word_vector(w) for w in model.words])
    np.testing.assert_allclose(vectors.matrix, expected, rtol=0, atol=1e-6)
    vectors.save(tmp_path / "model.vec")
    text = load_vectors(tmp_path / "model.vec")
    assert text.words == model.words
    np.testing.assert_array_equal(text.matrix, vectors.matrix)


def test_supervised_model_reads_its_input_matrix(supervised):
    model, path = supervised
    vectors = load_vectors(path)
    assert vectors.words == model.words and vectors.maxn == 0
    assert "__label__1" not in vectors
    for word in model.words + ["unseen"]:
        expected = model.get_word_vector(word)
        if word in model.words:
            np.testing.assert_allclose(vectors[word], expected, atol=1e-6)
        else:  # no n-grams: no vector, as fastText's zeros
            assert not np.any(expected)
            with pytest.raises(KeyError):
                vectors[word]


@pytest.fixture(scope="session")
def gensim_model(tmp_path_factory):
    models = pytest.importorskip("gensim.models")
    from gensim.models.fasttext import save_facebook_model

    rng = np.random.default_rng(2)
    sentences = [list(rng.choice(WORDS, 10)) for _ in range(200)]
    model = models.FastText(sentences, vector_size=8, min_count=1, min_n=2,
                            max_n=5, bucket=2000, epochs=2, seed=3,
                            workers=1)
    path = tmp_path_factory.mktemp("gensim") / "gensim.bin"
    save_facebook_model(model, str(path))
    return path


def test_gensim_written_model_equals_gensim(gensim_model):
    from gensim.models.fasttext import load_facebook_vectors

    expected = load_facebook_vectors(str(gensim_model))
    vectors = load_vectors(gensim_model)
    assert vectors.words == list(expected.index_to_key)
    for word in vectors.words + UNSEEN:
        if word in ("", "</s>"):  # gensim: no empty word; </s> not special
            continue
        np.testing.assert_allclose(vectors[word], expected[word], rtol=0,
                                   atol=1e-6, err_msg=repr(word))


def test_limit_and_bad_tokens_are_refused(trained):
    with pytest.raises(ValueError, match="`limit` does not apply"):
        load_vectors(trained[1], limit=3)
    with pytest.raises(ValueError, match="must contain only strings"):
        load_vectors(trained[1]).lookup(["chat", 3])


def test_from_file_gives_subword_vectors_with_coverage(trained):
    model, path = trained
    tokens = ["", "[UNK]", "chat", "Chat", "café", "unseen", "Paris",
              "PARIS", "ĉeĥo"]
    layer = kel.PretrainedEmbedding.from_file(path, tokens, verbose=0)
    # "Chat" by lowercase, "PARIS" via its n-grams ("paris" is no word).
    assert layer.coverage == kel.vectors.Coverage(7, 7, 1, [], 3)
    assert layer.coverage != (7, 7, 1, [])  # subwords is compared too
    found, total, lowercase, missing = layer.coverage  # still 4 fields
    config = layer.get_config()
    assert config["coverage"]["subwords"] == 3
    copy = kel.PretrainedEmbedding.from_config(config)
    assert copy.coverage == layer.coverage and copy.coverage.subwords == 3
    table = keras.ops.convert_to_numpy(layer.embeddings)
    for i, token in enumerate(tokens[2:], 2):
        word = "chat" if token == "Chat" else token
        np.testing.assert_allclose(table[i], model.get_word_vector(word),
                                   atol=1e-6, err_msg=token)
    np.testing.assert_array_equal(table[0], 0)
    assert kel.PretrainedEmbedding._coverage_line(layer.coverage,
                                                  tokens) == (
        "found 7 of 7 tokens (100.0%), 1 via lowercase, 3 from subword "
        "n-grams (not counting '' and '[UNK]')")
    neighbours = layer.most_similar("unseen", k=3)
    assert len(neighbours) == 3
    assert {w for w, _ in neighbours} <= set(tokens[2:]) - {"unseen"}
    # int8: quantized after loading; the streaming int8 path refuses.
    layer.quantize("int8")
    assert kel.PretrainedEmbedding._coverage_line(layer.coverage)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer._dense_table("float32")), table,
        atol=np.abs(table).max() / 100)
    for format in ("auto", "fasttext-binary"):
        with pytest.raises(ValueError, match="is a fastText model"):
            kel.PretrainedEmbedding.from_file(path, tokens, format=format,
                                              quantize="int8", verbose=0)


def test_tokens_without_ngrams_follow_oov(supervised, tmp_path):
    model, path = supervised
    tokens = ["", "[UNK]", "chat", "nowhere", "x"]
    copy = tmp_path / "gone.bin"
    shutil.copyfile(path, copy)
    layer = kel.PretrainedEmbedding.from_file(copy, tokens, oov="zeros",
                                              verbose=0)
    os.remove(copy)
    assert layer.coverage == kel.vectors.Coverage(2, 3, 0, ["nowhere"], 0)
    table = keras.ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_array_equal(table[3], 0)
    np.testing.assert_allclose(table[2], model.get_word_vector("chat"),
                               atol=1e-6)
    # Saved models hold the table: the .bin is not needed to load them.
    inputs = keras.Input((2,), dtype="int32")
    saved = tmp_path / "model.keras"
    keras.Model(inputs, layer(inputs)).save(saved)
    restored = keras.saving.load_model(saved)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored.layers[1].embeddings), table)
    assert restored.layers[1].coverage == layer.coverage
