"""Nearest neighbours, word-pair and analogy evaluation equal to gensim's
`KeyedVectors`, projector files that TensorBoard's projector plugin
reads, and `plot_embeddings` (NumPy only, but for one test of a Keras
table)."""

import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath
from vector_helpers import seed_everything  # noqa: F401

import keras_embedlab
from keras_embedlab.vectors import Vectors, _evaluate, load_vectors

PAIRS = datapath("wordsim353.tsv")
SIMILARITY_FUNCTIONS = ("most_similar", "most_similar_cosmul")
ANALOGIES = datapath("questions-words.txt")


@pytest.fixture(scope="module")
def shipped():
    """gensim's shipped test vectors (2,747 words of the Lee corpus, dim
    10), in gensim and in ours."""
    path = datapath("euclidean_vectors.bin")
    return (KeyedVectors.load_word2vec_format(path, binary=True),
            load_vectors(path))


def _keyed(vectors):
    keyed = KeyedVectors(vectors.dim)
    keyed.add_vectors(vectors.words, vectors.matrix)
    return keyed


@pytest.fixture(scope="module")
def planted():
    """A table where most capital-country and family analogies of
    questions-words.txt hold (the second word of a pair is the first plus
    the section's offset plus noise), with random filler rows between,
    and lower-case copies of some capitals further down (case variants
    that case-insensitive evaluation must treat as the same word)."""
    rng = np.random.default_rng(7)
    pairs, section = {}, None
    with open(ANALOGIES, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(": "):
                section = line[2:].strip()
            elif section in ("capital-common-countries", "family"):
                a, b, c, d = line.split()
                pairs.setdefault((a, b), section)
                pairs.setdefault((c, d), section)
    dim = 16
    offsets = {s: rng.normal(0, 1, dim)
               for s in sorted(set(pairs.values()))}  # a fixed order
    table = {}
    for (first, second), name in pairs.items():
        base = table.setdefault(first, rng.normal(0, 1, dim))
        table.setdefault(second, base + offsets[name]
                         + rng.normal(0, 0.35, dim))
    words = list(table)
    rng.shuffle(words)
    filler = [f"filler{i}" for i in range(150)]
    variants = [w.lower() for w in words if w[0].isupper()][:10]
    order = words[:60] + filler + words[60:] + variants
    matrix = [table[w] if w in table else
              table[w.capitalize()] + rng.normal(0, 0.05, dim)
              if w in variants else rng.normal(0, 1, dim) for w in order]
    return Vectors(order, np.asarray(matrix, np.float32))


def _counts(sections):
    return [(s["section"], len(s["correct"]), len(s["incorrect"]))
            for s in sections]


# --- evaluate_word_pairs ---------------------------------------------------

@pytest.mark.parametrize("restrict_vocab, case_insensitive, dummy4unknown", [
    pytest.param(300000, True, False, id="defaults"),
    pytest.param(1000, True, False, id="restrict1000"),
    pytest.param(300000, False, True, id="case-sensitive-dummy"),
])
def test_word_pairs_equal_gensim(shipped, restrict_vocab, case_insensitive,
                                 dummy4unknown):
    keyed, ours = shipped
    options = dict(restrict_vocab=restrict_vocab,
                   case_insensitive=case_insensitive,
                   dummy4unknown=dummy4unknown)
    pearson, spearman, oov = keyed.evaluate_word_pairs(PAIRS, **options)
    got = ours.evaluate_word_pairs(PAIRS, **options)
    assert got[2] == oov
    # Statistics and p-values within 1e-6 (ours from float32 cosines
    # summed in another order: the statistics differ by ~1e-9).
    np.testing.assert_allclose(
        [got[0].statistic, got[0].pvalue, got[1].statistic, got[1].pvalue],
        [pearson.statistic, pearson.pvalue, spearman.statistic,
         spearman.pvalue], rtol=0, atol=1e-6)
    statistic, pvalue = got[1]  # unpacks as SciPy's results do
    assert statistic == got[1].statistic and pvalue == got[1].pvalue


@pytest.mark.parametrize("n, ties, strength", [
    pytest.param(5, False, 0.3, id="n5"),
    pytest.param(60, True, 0.2, id="ties"),
    pytest.param(400, True, 0.0, id="n400-null"),
    pytest.param(400, False, 5.0, id="n400-p1e-100"),
])
def test_correlations_equal_scipy(n, ties, strength):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    if ties:
        x = np.round(x * 2) / 2
    y = strength * x + rng.normal(size=n)
    if ties:
        y = np.round(y)
    for ours, theirs in ((_evaluate.pearson_correlation, stats.pearsonr),
                         (_evaluate.spearman_correlation, stats.spearmanr)):
        got, expected = ours(x, y), theirs(x, y)
        np.testing.assert_allclose(got.statistic, expected.statistic,
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(got.pvalue, expected.pvalue, rtol=1e-9)
    np.testing.assert_array_equal(_evaluate.average_ranks(y),
                                  stats.rankdata(y))


def test_word_pairs_file_problems(tmp_path, shipped):
    _, ours = shipped
    path = tmp_path / "pairs.tsv"
    path.write_text("# comment\nthe\tof\t1.5\nthe\tto\tmany\n\n"
                    "police\tfire\t8\tx\nin\tand\t2\nnowhere1\tthe\t3\n")
    with pytest.warns(UserWarning, match=r"pairs.tsv: skipped 2 line\(s\) "
                      r"that are not two words .*: line 3, 5\."):
        _, _, oov = ours.evaluate_word_pairs(path)
    assert oov == pytest.approx(100 / 3)
    path.write_text("nowhere1\tnowhere2\t1\n")
    with pytest.raises(ValueError, match="No similarity judgement in .*"
                       "pairs.tsv has both words among the 2747 words"):
        ours.evaluate_word_pairs(path)
    path.write_bytes(b"the\tof\t1\r\ncaf\xe9\tin\t2\nin\tand\t3\n")
    with pytest.raises(ValueError, match=r"pairs.tsv, line 2: not utf8 text"
                       r" \(invalid continuation byte at byte 3 of the "
                       r"line\)\. Pass the file's `encoding`"):
        ours.evaluate_word_pairs(path)
    pearson, _, oov = ours.evaluate_word_pairs(path, encoding="latin-1")
    assert oov == pytest.approx(100 / 3)
    assert abs(pearson.statistic) == pytest.approx(1) and pearson.pvalue == 1


# --- evaluate_word_analogies -----------------------------------------------

@pytest.mark.parametrize("restrict_vocab, case_insensitive, dummy4unknown", [
    pytest.param(300000, True, False, id="defaults"),
    pytest.param(500, True, True, id="restrict500-dummy"),
    pytest.param(None, False, False, id="case-sensitive-all"),
])
def test_analogies_equal_gensim(shipped, restrict_vocab, case_insensitive,
                                dummy4unknown):
    keyed, ours = shipped
    options = dict(restrict_vocab=restrict_vocab,
                   case_insensitive=case_insensitive,
                   dummy4unknown=dummy4unknown)
    expected = keyed.evaluate_word_analogies(ANALOGIES, **options)
    got = ours.evaluate_word_analogies(ANALOGIES, **options)
    assert got == expected  # the score, and every section's questions


@pytest.mark.parametrize("restrict_vocab", [
    pytest.param(300000, id="all"), pytest.param(230, id="restrict230")])
def test_planted_analogies_equal_gensim(planted, restrict_vocab):
    expected = _keyed(planted).evaluate_word_analogies(
        ANALOGIES, restrict_vocab=restrict_vocab)
    got = planted.evaluate_word_analogies(ANALOGIES,
                                          restrict_vocab=restrict_vocab)
    assert got == expected
    correct = _counts(got[1])[-1][1]
    assert correct > 300  # most of the planted analogies are found


@pytest.mark.parametrize("table, restrict_vocab", [
    pytest.param("planted", 300000, id="planted"),
    pytest.param("planted", 230, id="planted-restrict230"),
    pytest.param("shipped", 1000, id="shipped-restrict1000"),
])
def test_cosmul_analogies_equal_gensim(request, table, restrict_vocab):
    # gensim 4.4's evaluate_word_analogies always calls `most_similar`
    # (its `similarity_function` is unused) and its `most_similar_cosmul`
    # searches every row: its 3CosMul evaluation restricted to N words is
    # that of a table of those N words, with `most_similar` pointed at
    # `most_similar_cosmul`.
    ours = request.getfixturevalue(table)
    if table == "shipped":
        ours = ours[1]
    first = Vectors(ours.words[:restrict_vocab],
                    ours.matrix[:restrict_vocab])
    keyed = _keyed(first)
    keyed.most_similar = keyed.most_similar_cosmul
    expected = keyed.evaluate_word_analogies(ANALOGIES, restrict_vocab=None)
    got = ours.evaluate_word_analogies(
        ANALOGIES, restrict_vocab=restrict_vocab,
        similarity_function="most_similar_cosmul")
    assert got == expected
    if table == "planted":
        assert _counts(got[1])[-1][1] > 300


@pytest.mark.parametrize("similarity_function", SIMILARITY_FUNCTIONS)
def test_analogy_restriction_hides_the_rows_beyond_it(tmp_path,
                                                      similarity_function):
    # "Queen", the best answer (3CosAdd: along king - man + woman; 3CosMul:
    # nearly opposite man), is row 9: beyond restrict_vocab=9, where
    # "queen" (its first case variant, far from the answer) ranks below
    # five fillers; with every row searched, "Queen" answers QUEEN.
    rng = np.random.default_rng(0)
    words = ["man", "woman", "king", "queen"] + [f"f{i}" for i in range(5)]
    best = ([-1, 1, 1] if similarity_function == "most_similar"
            else [-1, 0.05, 0.05])
    matrix = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, -1, 0.5],
              *([-1, 1, 1] + rng.normal(0, 0.2, (5, 3))), best]
    vectors = Vectors(words + ["Queen"], np.asarray(matrix, np.float32))
    path = tmp_path / "questions.txt"
    path.write_text(": family\nman woman king queen\n")
    got = {}
    for restrict_vocab in (9, None):
        keyed = _keyed(vectors)
        if similarity_function == "most_similar_cosmul":
            # gensim's 3CosMul searches every row: give it the first 9.
            keyed = _keyed(Vectors(vectors.words[:restrict_vocab],
                                   vectors.matrix[:restrict_vocab]))
            keyed.most_similar = keyed.most_similar_cosmul
        expected = keyed.evaluate_word_analogies(
            path, restrict_vocab=restrict_vocab)
        got[restrict_vocab] = vectors.evaluate_word_analogies(
            path, restrict_vocab=restrict_vocab,
            similarity_function=similarity_function)
        assert got[restrict_vocab] == expected
    assert got[9][0] == 0.0 and got[None][0] == 1.0


def test_analogy_file_problems(tmp_path, shipped):
    _, ours = shipped
    path = tmp_path / "questions.txt"
    path.write_text("the of in and\n: first\n")
    with pytest.raises(ValueError, match=r"questions.txt, line 1: a question "
                       "before the first `: section` line"):
        ours.evaluate_word_analogies(path)
    path.write_text(": first\nthe of in\n\nthe of in and\n")
    with pytest.warns(UserWarning, match=r"skipped 1 line\(s\) that are not 4"
                      r" words or a `: section` line: line 2\."):
        score, sections = ours.evaluate_word_analogies(path)
    assert _counts(sections) == [("first", 0, 1), ("Total accuracy", 0, 1)]
    with pytest.raises(ValueError, match="`similarity_function` must be one "
                       "of 'most_similar', 'most_similar_cosmul'. Received: "
                       "similarity_function='cosine'"):
        ours.evaluate_word_analogies(path, similarity_function="cosine")


# --- most_similar ----------------------------------------------------------

QUERIES = [
    pytest.param(dict(positive=["police"]), id="one-word"),
    pytest.param(dict(positive=["fire", "minister"], negative=["police"]),
                 id="analogy"),
    pytest.param(dict(positive=[("fire", 2.0), "minister"], negative="the"),
                 id="weights"),
    pytest.param(dict(positive=["fire"], restrict_vocab=300), id="restrict"),
    pytest.param(dict(positive=["police"], topn=None), id="all-scores"),
]


@pytest.mark.parametrize("query", QUERIES)
def test_most_similar_equals_gensim(shipped, query):
    keyed, ours = shipped
    expected = keyed.most_similar(**query)
    got = ours.most_similar(**query)
    if query.get("topn", 10) is None:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        return
    assert [w for w, _ in got] == [w for w, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected],
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("query", [
    pytest.param(dict(positive=["fire", "minister"], negative=["police"]),
                 id="analogy"),
    pytest.param(dict(positive=["police"], topn=4), id="one-word"),
])
def test_most_similar_cosmul_equals_gensim(shipped, query):
    keyed, ours = shipped
    expected = keyed.most_similar_cosmul(**query)
    got = ours.most_similar_cosmul(**query)
    assert [w for w, _ in got] == [w for w, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected],
                               rtol=1e-6)


def test_chunked_neighbours_equal_whole_table(shipped, monkeypatch):
    _, ours = shipped

    def results():
        return [ours.most_similar("police", topn=20),
                ours.most_similar(["fire", "minister"], "police", topn=None),
                ours.most_similar_cosmul(["fire", "minister"], "police"),
                ours.evaluate_word_analogies(ANALOGIES, restrict_vocab=600),
                ours.evaluate_word_analogies(
                    ANALOGIES, restrict_vocab=600,
                    similarity_function="most_similar_cosmul")]

    whole = results()
    # Every score block is at most 7 rows of the table by 5 queries.
    blocks = []
    cosine = _evaluate._cosine_scores

    def recording(means):
        score = cosine(means)

        def recorded(block, norms):
            blocks.append((len(means), len(block)))
            return score(block, norms)
        return recorded

    monkeypatch.setattr(_evaluate, "_cosine_scores", recording)
    monkeypatch.setattr(_evaluate, "NEIGHBOUR_CHUNK_ROWS", 7)
    monkeypatch.setattr(_evaluate, "QUERY_BATCH", 5)
    chunked = results()
    assert max(blocks) == (5, 7) and len(blocks) > 500
    assert chunked[0] == whole[0]
    np.testing.assert_array_equal(chunked[1], whole[1])
    assert chunked[2:] == whole[2:]


def test_most_similar_errors_and_zero_rows():
    vectors = Vectors(["a", "b", "zero", "c"],
                      [[1, 0], [0.9, 0.1], [0, 0], [-1, 0.2]])
    # A row of zeros has no direction: NaN, and last.
    assert [w for w, _ in vectors.most_similar("a", topn=3)] == [
        "b", "c", "zero"]
    assert np.isnan(vectors.most_similar("a", topn=None)[2])
    with pytest.raises(KeyError, match="'d' is not among these 4 words"):
        vectors.most_similar("d")
    with pytest.raises(ValueError, match=r"`restrict_vocab` must be None or "
                       r"a non-negative integer.*Received: restrict_vocab=-1"):
        vectors.most_similar("a", restrict_vocab=-1)
    with pytest.raises(ValueError, match=r"vectors of shape \(2,\)"):
        vectors.most_similar([np.ones(3)])
    assert vectors.most_similar("a", topn=0) == []
    assert vectors.similarity("a", "b") == pytest.approx(
        0.9 / np.hypot(0.9, 0.1), abs=1e-7)


def test_a_keras_tables_vectors_are_evaluated():
    import keras

    layer = keras_embedlab.LookupEmbedding(6, 3)
    layer.build((None,))
    words = ["w0", "w1", "w2", "w3", "w4", "w5"]
    vectors = Vectors(words, keras.ops.convert_to_numpy(layer.embeddings))
    matrix = vectors.matrix.astype(np.float64)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    cosines = unit[2] @ unit.T
    order = [i for i in np.argsort(-cosines) if i != 2]
    got = vectors.most_similar("w2", topn=5)
    assert [w for w, _ in got] == [words[i] for i in order]
    np.testing.assert_allclose([s for _, s in got], cosines[order],
                               atol=1e-6)


# --- to_projector ----------------------------------------------------------

def _projector_plugin(monkeypatch):
    """The plugin's module, reading files as it does without TensorFlow
    (its `tf` stub): TensorFlow's own import costs seconds."""
    from tensorboard.compat import tensorflow_stub
    from tensorboard.plugins.projector import projector_plugin

    monkeypatch.setattr(projector_plugin, "tf", tensorflow_stub)
    return projector_plugin


def test_projector_files_load_in_the_projector_plugin(tmp_path, monkeypatch):
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import (
        ProjectorConfig,
    )

    plugin = _projector_plugin(monkeypatch)
    rng = np.random.default_rng(3)
    words = ["king", "tab\there", "new\nline", "東京"]
    matrix = rng.normal(size=(4, 5)).astype(np.float32)
    matrix[0, 0] = np.float32(1) / np.float32(3)  # needs 9 digits
    matrix[1, 1] = np.finfo(np.float32).tiny
    vectors = Vectors(words, matrix)
    folder = tmp_path / "logs"
    config_path = vectors.to_projector(folder, tensor_name="words")
    assert config_path == os.path.join(folder, "projector_config.pbtxt")
    assert sorted(os.listdir(tmp_path)) == ["logs"]
    assert sorted(os.listdir(folder)) == [
        "metadata.tsv", "projector_config.pbtxt", "tensors.tsv"]

    config = text_format.Parse(Path(config_path).read_text(), ProjectorConfig())
    (embedding,) = config.embeddings
    assert (embedding.tensor_name, embedding.tensor_path,
            embedding.metadata_path) == ("words", "tensors.tsv",
                                         "metadata.tsv")
    # The plugin's own reading: the config in the log directory, the paths
    # resolved inside it, the tensor file parsed.
    configs, paths = plugin.ProjectorPlugin._read_latest_config_files(
        None, [(".", str(folder))])
    assert configs["."] == config
    tensor_path = plugin._rel_to_abs_asset_path(embedding.tensor_path,
                                                paths["."])
    tensor = plugin._read_tensor_tsv_file(tensor_path)
    assert tensor.dtype == np.float32
    np.testing.assert_array_equal(tensor.view(np.uint32),
                                  matrix.view(np.uint32))
    # One column: no header line; tabs and line breaks escaped.
    metadata = (folder / "metadata.tsv").read_text(encoding="utf-8")
    assert metadata == "king\ntab\\there\nnew\\nline\n東京\n"


def test_projector_metadata_columns_and_refusals(tmp_path):
    vectors = Vectors(["a", "b"], [[1, 2], [3, 4]])
    vectors.to_projector(tmp_path, metadata={"word": vectors.words,
                                             "count": [10, 3]})
    assert (tmp_path / "metadata.tsv").read_text() == (
        "word\tcount\na\t10\nb\t3\n")
    vectors.to_projector(tmp_path, metadata=["x", "y"])
    assert (tmp_path / "metadata.tsv").read_text() == "x\ny\n"
    with pytest.raises(ValueError, match=r"`metadata` must hold one label "
                       r"per word \(2\). Received: 1 labels"):
        vectors.to_projector(tmp_path, metadata=["x"])
    with pytest.raises(ValueError, match=r"The vector of 'b' \(row 1\) holds"
                       " a NaN or infinite value"):
        Vectors(["a", "b"], [[1, 2], [np.inf, 4]]).to_projector(tmp_path)
    # A link planted in the folder is not followed out of it.
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    folder = tmp_path / "planted"
    folder.mkdir()
    os.symlink(outside, folder / "tensors.tsv")
    if hasattr(os, "O_NOFOLLOW"):
        with pytest.raises(OSError):
            vectors.to_projector(folder)
        assert outside.read_text() == "keep"


# --- plot_embeddings -------------------------------------------------------

def _png_size(path):
    data = Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_embeddings_writes_the_pca_of_words_and_neighbours(
        shipped, tmp_path):
    _, ours = shipped
    path = tmp_path / "plot.png"
    plot = keras_embedlab.plot_embeddings(
        ours, ["police", "fire"], neighbours=3, path=path, figsize=(4, 3),
        dpi=50)
    assert _png_size(path) == (200, 150)
    expected_words = []
    for query in ("police", "fire"):
        expected_words += [query] + [w for w, _ in
                                     ours.most_similar(query, topn=3)]
    assert plot.words == expected_words
    assert plot.groups == ["police"] * 4 + ["fire"] * 4
    assert plot.figure is None
    # NumPy reference: eigenvectors of the covariance of the unit vectors.
    points = np.stack([ours[w] for w in expected_words]).astype(np.float64)
    # Unit length in float64, stored float32 (as the plot's unit rows).
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    points = points.astype(np.float32).astype(np.float64)
    centred = points - points.mean(axis=0)
    values, axes = np.linalg.eigh(centred.T @ centred)
    axes = axes[:, ::-1][:, :2]
    reference = centred @ axes
    signs = np.sign(np.sum(reference * plot.coordinates, axis=0))
    np.testing.assert_allclose(plot.coordinates, reference * signs,
                               atol=1e-9)
    np.testing.assert_allclose(plot.explained, values[::-1][:2] / values.sum(),
                               atol=1e-12)
    # The sign convention: each axis' largest loading is positive.
    loadings = np.linalg.lstsq(centred, plot.coordinates, rcond=None)[0]
    assert (loadings[np.abs(loadings).argmax(axis=0), [0, 1]] > 0).all()


def test_plot_embeddings_without_path_or_matplotlib(shipped, monkeypatch):
    _, ours = shipped
    plot = keras_embedlab.plot_embeddings(ours, ["police"], neighbours=0,
                                          figsize=(2, 2), dpi=20)
    assert plot.words == ["police"] and plot.figure is not None
    assert plot.coordinates.shape == (1, 2)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"`pip install matplotlib` \(or "
                       r"`pip install keras_embedlab\[bench\]`\)"):
        keras_embedlab.plot_embeddings(ours, ["police"])
    with pytest.raises(ValueError, match="`method` must be one of 'pca'"):
        keras_embedlab.plot_embeddings(ours, ["police"], method="tsne")
