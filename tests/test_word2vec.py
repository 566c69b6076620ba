"""`Word2Vec`: planted structure recovered on every backend; vocabulary,
subsampling, negative table, reduced window and learning rate as gensim
defines them; streaming a file equals a list; the loss tally; errors;
saved files that we and gensim read."""

import threading

import keras
import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.models import Word2Vec as GensimWord2Vec

from keras_embedlab import Word2Vec
from keras_embedlab.vectors import load_vectors
from keras_embedlab.word2vec import _corpus

GROUPS, PER_GROUP = 6, 5


def planted_corpus(n_sentences=300, length=8, seed=0):
    """Sentences drawn within one group of words each: words of a group
    share all their contexts, words of different groups none."""
    rng = np.random.default_rng(seed)
    words = [[f"g{g}w{i}" for i in range(PER_GROUP)] for g in range(GROUPS)]
    corpus = []
    for _ in range(n_sentences):
        group = words[rng.integers(GROUPS)]
        corpus.append([group[i] for i in rng.integers(PER_GROUP,
                                                      size=length)])
    return corpus


def neighbour_in_group_rate(vectors):
    hits = 0
    for word in vectors.words:
        neighbour = vectors.most_similar(word, topn=1)[0][0]
        hits += neighbour.split("w")[0] == word.split("w")[0]
    return hits / len(vectors)


@pytest.mark.parametrize("sg", [pytest.param(1, id="skipgram"),
                                pytest.param(0, id="cbow")])
def test_planted_groups_are_recovered(sg):
    model = Word2Vec(planted_corpus(), vector_size=16, window=3,
                     min_count=1, sg=sg, sample=0, epochs=5, verbose=0,
                     batch_size=256)
    # Chance: (PER_GROUP - 1) / (GROUPS * PER_GROUP - 1) = 0.14.
    assert neighbour_in_group_rate(model.wv) >= 0.9
    # Before training the rows are random: the rate is near chance.
    untrained = Word2Vec(vector_size=16, min_count=1, verbose=0)
    untrained.build_vocab(planted_corpus())
    assert neighbour_in_group_rate(untrained.wv) < 0.5


def _gensim_vocab(corpus, **kwargs):
    model = GensimWord2Vec(**kwargs)
    model.build_vocab(corpus)
    return model


def test_vocabulary_equals_gensims():
    rng = np.random.default_rng(3)
    pool = [f"w{i}" for i in range(60)]
    # Zipf-like counts with many ties, first-seen order shuffled.
    corpus = [[pool[min(int(rng.zipf(1.3)) - 1, 59)] for _ in range(12)]
              for _ in range(200)]
    for min_count in (1, 3):
        model = Word2Vec(min_count=min_count, verbose=0)
        model.build_vocab(corpus)
        gensim = _gensim_vocab(corpus, min_count=min_count)
        assert model.index_to_key == gensim.wv.index_to_key
        np.testing.assert_array_equal(
            model.counts, [gensim.wv.get_vecattr(w, "count")
                           for w in gensim.wv.index_to_key])
        assert model.corpus_total_words == gensim.corpus_total_words
        assert model.corpus_count == gensim.corpus_count
        assert model.wv.words == gensim.wv.index_to_key


@pytest.mark.parametrize("sample", [1e-3, 1e-2, 0.0, 3.0])
def test_subsampling_and_negative_table_equal_gensims(sample):
    rng = np.random.default_rng(4)
    corpus = [[f"w{min(int(rng.zipf(1.5)), 200)}" for _ in range(20)]
              for _ in range(300)]
    model = Word2Vec(min_count=1, sample=sample, verbose=0)
    model.build_vocab(corpus)
    gensim = _gensim_vocab(corpus, min_count=1, sample=sample)
    sample_int = np.array([gensim.wv.get_vecattr(w, "sample_int")
                           for w in gensim.wv.index_to_key], np.float64)
    # gensim keeps a word when sample_int >= a uniform 32-bit integer.
    np.testing.assert_array_equal(model.keep, (sample_int + 1) / 2**32)
    if sample:
        assert model.keep.min() < 0.5  # some words are subsampled
    np.testing.assert_array_equal(model.cum_table, gensim.cum_table)


def test_negatives_follow_count_to_the_075():
    counts = np.array([1000, 300, 50, 50, 7, 1])
    table = _corpus.cum_table(counts)
    draws = _corpus.draw_negatives(np.random.default_rng(0),
                                   _corpus.negative_sampler(table),
                                   (200_000,))
    expected = counts**0.75 / np.sum(counts**0.75)
    observed = np.bincount(draws, minlength=len(counts)) / draws.size
    np.testing.assert_allclose(observed, expected, atol=4e-3)


def _maker(sg, window, seed=0):
    keep = np.ones(10)
    return _corpus.ExampleMaker({str(i): i for i in range(10)}, keep,
                                _corpus.cum_table(np.ones(10)), window, sg,
                                2, 0.0, np.random.default_rng(seed))


@pytest.mark.parametrize("sg", [pytest.param(1, id="skipgram"),
                                pytest.param(0, id="cbow")])
def test_reduced_window_as_gensim(sg):
    """Examples equal a per-word loop over gensim's reduced window (reach
    `window - b`, b uniform in [0, window), not across sentences, words
    out of the vocabulary dropped first)."""
    window = 3
    chunk = [["1", "2", "oov", "3", "4", "5", "6", "7"], ["8", "9"],
             ["1"], [], ["2", "3", "4", "5"]]
    inputs, targets = _maker(sg, window).examples(chunk)
    rng = np.random.default_rng(0)
    kept = [[int(w) for w in s if w != "oov"] for s in chunk]
    flat = [w for s in kept for w in s]
    reach = window - rng.integers(0, window, size=len(flat))
    expected_inputs, expected_targets = [], []
    position = 0
    for sentence in kept:
        for i, word in enumerate(sentence):
            r = reach[position + i]
            context = [sentence[j] for j in range(max(0, i - r),
                                                  min(len(sentence),
                                                      i + r + 1))
                       if j != i]
            if sg:
                expected_inputs += [[c] for c in context]
                expected_targets += [word] * len(context)
            elif context:
                expected_inputs.append(sorted(context))
                expected_targets.append(word)
        position += len(sentence)
    assert targets[:, 0].tolist() == expected_targets
    got = [sorted(int(i) for i in row if i >= 0) for row in inputs]
    assert got == [sorted(row) for row in expected_inputs]
    # The reach is uniform over 1..window.
    reach = window - np.random.default_rng(1).integers(0, window, 30_000)
    np.testing.assert_allclose(np.bincount(reach)[1:] / reach.size,
                               [1 / 3] * 3, atol=0.015)


def test_learning_rate_decays_as_gensims():
    gensim = GensimWord2Vec(alpha=0.05, min_alpha=0.001, epochs=4)
    for epoch, progress in [(0, 0.0), (1, 0.25), (3, 0.9), (3, 1.0)]:
        assert _corpus.learning_rate(
            0.05, 0.001, (epoch + progress) / 4) == pytest.approx(
            gensim._get_next_alpha(progress, epoch), rel=1e-12)
    # In training: each chunk of `batch_words` words gets the rate of the
    # words before it, from `alpha` down towards `min_alpha`.
    corpus = planted_corpus(100)  # 800 words
    model = Word2Vec(min_count=1, alpha=0.05, min_alpha=0.001, epochs=2,
                     batch_words=200, verbose=0, batch_size=64)
    model.build_vocab(corpus)
    rates = []
    step = model._step

    def recording(inputs, targets, lr):
        rates.extend(lr[lr > 0].tolist())
        return step(inputs, targets, lr)

    model._step = recording
    model.train(corpus)
    expected = [_corpus.learning_rate(0.05, 0.001, k * 200 / 1600)
                for k in range(8)]
    np.testing.assert_allclose(sorted(set(rates), reverse=True), expected,
                               rtol=1e-6)


def test_running_loss_is_the_float64_sum_of_every_example():
    """With zero output vectors every logit is 0: each example's loss is
    log(2) per term (the target, and each negative unequal to it)."""
    corpus = planted_corpus(50)
    model = Word2Vec(min_count=1, sg=1, alpha=1e-9, min_alpha=0.0, sample=0,
                     epochs=1, verbose=0, batch_size=100)
    model.build_vocab(corpus)
    terms = []
    step = model._step

    def recording(inputs, targets, lr):
        used = lr > 0
        terms.append(int(used.sum() + (
            targets[used, 1:] != targets[used, :1]).sum()))
        return step(inputs, targets, lr)

    model._step = recording
    loss = model.train(corpus)
    assert isinstance(loss, float)
    assert loss == model.get_latest_training_loss()
    assert loss == pytest.approx(np.log(2) * sum(terms), rel=1e-5)
    assert model.effective_words == 400


def test_streaming_a_file_equals_a_list(tmp_path):
    corpus = planted_corpus(120)
    path = tmp_path / "corpus.txt"
    path.write_text("".join(" ".join(s) + "\n" for s in corpus),
                    encoding="utf-8")
    kwargs = dict(vector_size=8, min_count=1, epochs=2, verbose=0,
                  batch_words=100, batch_size=128)
    from_list = Word2Vec(corpus, **kwargs)
    from_file = Word2Vec(str(path), **kwargs)
    assert from_list.index_to_key == from_file.index_to_key
    assert from_list.effective_words == from_file.effective_words
    np.testing.assert_array_equal(from_list.wv.matrix, from_file.wv.matrix)
    assert from_list.running_training_loss == pytest.approx(
        from_file.running_training_loss, rel=1e-6)


def test_progress_bar_shows_words_per_second_and_loss(capsys):
    Word2Vec(planted_corpus(40), min_count=1, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "words/s" in out and "loss" in out


@pytest.mark.parametrize("argument, value", [
    ("vector_size", 0), ("window", 1.5), ("min_count", 0), ("sg", 2),
    ("negative", 0), ("sample", -1e-3), ("alpha", 0.0), ("epochs", 0),
    ("batch_size", "big"), ("min_alpha", float("nan")), ("workers", 0),
])
def test_bad_arguments_name_the_argument(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}` must be .*"
                                         f"Received: {argument}="):
        Word2Vec(**{argument: value})


def test_corpus_errors(tmp_path):
    with pytest.raises(TypeError, match="re-iterable.*generator"):
        Word2Vec((s for s in planted_corpus(5)), min_count=1)
    with pytest.raises(TypeError, match="list of tokens, not a string"):
        Word2Vec(["a b c"], min_count=1)
    with pytest.raises(FileNotFoundError, match="no-such-file"):
        Word2Vec(str(tmp_path / "no-such-file.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="no word seen at least"):
        Word2Vec(str(empty), min_count=1)
    with pytest.raises(ValueError, match="min_count=50"):
        Word2Vec(planted_corpus(5), min_count=50)
    with pytest.raises(ValueError, match="build_vocab"):
        Word2Vec().wv


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_saved_file_loads_in_ours_and_gensims(tmp_path, binary):
    model = Word2Vec(planted_corpus(40), vector_size=8, min_count=1,
                     epochs=1, verbose=0)
    path = tmp_path / ("v.bin" if binary else "v.txt")
    model.save_word2vec_format(path, binary=binary)
    ours = load_vectors(path)
    gensim = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert ours.words == model.index_to_key == gensim.index_to_key
    np.testing.assert_array_equal(ours.matrix, model.wv.matrix)
    np.testing.assert_array_equal(gensim.vectors, model.wv.matrix)


def test_initial_vectors_as_gensims():
    """Word vectors uniform in [-1/dim, 1/dim) (gensim 4's
    `prep_vectors`), output vectors zero."""
    model = Word2Vec(vector_size=20, min_count=1, verbose=0)
    model.build_vocab(planted_corpus())
    matrix = model.wv.matrix
    assert matrix.min() >= -1 / 20 and matrix.max() < 1 / 20
    assert np.abs(matrix).max() > 0.9 / 20
    np.testing.assert_allclose(matrix.std(), 1 / 20 / np.sqrt(3), rtol=0.1)
    assert not np.any(np.asarray(model.output_table.embeddings))


def _gensim_cbow_updates(syn0, syn1, inputs, targets, lr):
    """gensim's `w2v_fast_sentence_cbow_neg`, one example after the other:
    the hidden vector is the mean of the context rows; each output row is
    updated at once; a negative equal to the target is skipped; every
    context row gets the whole error. Returns the summed loss."""
    loss = 0.0
    for context, words, rate in zip(inputs, targets, lr):
        context = context[context >= 0]
        hidden = syn0[context].mean(axis=0)
        work = np.zeros_like(hidden)
        for d, word in enumerate(words):
            if d and word == words[0]:
                continue
            label = 1.0 if d == 0 else 0.0
            logit = hidden @ syn1[word]
            loss -= np.log(1 / (1 + np.exp(-logit if d == 0 else logit)))
            g = (label - 1 / (1 + np.exp(-logit))) * rate
            work += g * syn1[word]
            syn1[word] += g * hidden
        for row in context:
            syn0[row] += work
    return loss


def test_cbow_steps_apply_gensims_updates_one_example_after_another():
    """Examples that share rows (here all three share context rows and
    outputs) are trained as gensim trains them, one after the other: a
    step holding them together would sum updates computed from the same
    stale rows (the CBOW gap to gensim of benchmarks/RESULTS.md section
    9)."""
    model = Word2Vec(vector_size=3, window=2, min_count=1, sg=0, verbose=0)
    model.build_vocab([["a", "b", "c", "d", "e", "f"]])
    rng = np.random.default_rng(0)
    syn0 = rng.normal(0, 0.5, (6, 3)).astype(np.float32)
    syn1 = rng.normal(0, 0.5, (6, 3)).astype(np.float32)
    model.input_table.embeddings.assign(syn0)
    model.output_table.embeddings.assign(syn1)
    inputs = np.array([[1, 2, -1, -1], [0, 2, 3, -1], [0, 1, 3, 4]],
                      np.int32)
    # The last example draws its own target as a negative: skipped.
    targets = np.array([[0, 4, 5], [1, 5, 4], [2, 2, 5]], np.int32)
    lr = np.array([0.5, 0.4, 0.3], np.float32)
    losses = []
    model._run_full_steps([(inputs, targets, lr)], losses, flush=True)
    model._tally(losses)
    expected_loss = _gensim_cbow_updates(syn0, syn1, inputs, targets, lr)
    np.testing.assert_allclose(model.wv.matrix, syn0, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(model.output_table.embeddings), syn1, rtol=1e-5,
        atol=1e-6)
    assert model.running_training_loss == pytest.approx(expected_loss,
                                                        rel=1e-5)


@pytest.mark.parametrize("sg", [pytest.param(1, id="skipgram"),
                                pytest.param(0, id="cbow")])
def test_neighbouring_examples_never_share_a_step(sg):
    """Every word is distinct, so two examples share a row only when they
    come from one window: a CBOW context row, a skip-gram center (the
    target of its pairs). No step may hold two such examples."""
    corpus = [[f"s{i}w{j}" for j in range(12)] for i in range(400)]
    model = Word2Vec(vector_size=4, window=3, min_count=1, sg=sg,
                     sample=0, epochs=1, verbose=0, batch_size=32)
    model.build_vocab(corpus)
    steps = []
    step = model._step

    def recording(inputs, targets, lr):
        steps.extend(zip(inputs, targets, lr))
        return step(inputs, targets, lr)

    model._step = recording
    model.train(corpus)
    shared = 0
    for inputs, targets, lr in steps:
        used = lr > 0
        rows = (targets[used, 0] if sg else
                inputs[used][inputs[used] >= 0])
        shared += len(rows) - len(np.unique(rows))
    assert sum(int((lr > 0).sum()) for _, _, lr in steps) > 4096
    assert max(int((lr > 0).sum()) for _, _, lr in steps) == 32
    assert shared == 0


@pytest.mark.skipif(keras.backend.backend() != "torch",
                    reason="TorchScript tracing is PyTorch's (jax.jit and "
                    "the tf.function are compiled once per shapes already)")
def test_a_second_model_reuses_the_traced_steps(monkeypatch):
    """A new seed or a second model of the same shapes pays no second
    trace: the benchmark trains one model per seed."""
    import torch

    traces = []
    trace = torch.jit.trace

    def counting(*args, **kwargs):
        traces.append(args)
        return trace(*args, **kwargs)

    monkeypatch.setattr(torch.jit, "trace", counting)
    # A vector size no other test uses: no graph traced before this test.
    kwargs = dict(vector_size=7, min_count=1, epochs=1, verbose=0)
    first = Word2Vec(planted_corpus(40), seed=1, **kwargs)
    traced = len(traces)
    second = Word2Vec(planted_corpus(40), seed=2, **kwargs)
    assert traced >= 1
    assert len(traces) == traced
    assert not np.array_equal(first.wv.matrix, second.wv.matrix)


def test_calls_per_dispatch_change_nothing(monkeypatch):
    """Several calls of steps per dispatch of the compiled steps
    (`backend.ROW_STEP_CALLS`; 4 on TensorFlow), the last ones padded at
    the end, train the same tables and loss, bit for bit, as one."""
    from keras_embedlab import backend

    corpus = planted_corpus(400)
    trained = []
    for calls in (1, 3):
        monkeypatch.setattr(backend, "ROW_STEP_CALLS", calls)
        model = Word2Vec(corpus, vector_size=8, window=2, min_count=1, sg=1,
                         sample=0, epochs=2, verbose=0)
        trained.append((model.wv.matrix, keras.ops.convert_to_numpy(
            model.output_table.embeddings), model.running_training_loss))
    assert model.effective_words == 6400  # 4 to 5 calls of 4,096 pairs
    np.testing.assert_array_equal(trained[0][0], trained[1][0])
    np.testing.assert_array_equal(trained[0][1], trained[1][1])
    assert trained[0][2] == trained[1][2]


def test_steps_run_in_a_second_thread_and_change_nothing(monkeypatch):
    """`train` makes the next call's examples while the steps run in a
    second thread, one call at a time: the same tables and loss, bit for
    bit, as running each call where it is made."""
    from keras_embedlab.word2vec import _model

    corpus = planted_corpus(1500)  # 36,000 examples: 3 to 9 dispatches
    kwargs = dict(vector_size=8, window=2, min_count=1, sg=0, sample=0,
                  epochs=3, verbose=0)
    threaded = Word2Vec(**kwargs)
    threaded.build_vocab(corpus)
    names = []
    step = threaded._step

    def recording(*arrays):
        names.append(threading.current_thread().name)
        return step(*arrays)

    threaded._step = recording
    threaded.train(corpus)

    class Inline:
        def __init__(self, n):
            assert n == 1

        def submit(self, step, arrays):
            return [step(*arrays)]

        def wait(self):
            return []

        def close(self):
            pass

    monkeypatch.setattr(_model, "_StepThreads", Inline)
    inline = Word2Vec(corpus, **kwargs)
    assert len(names) >= 2
    assert all(name.startswith("word2vec-steps") for name in names)
    np.testing.assert_array_equal(threaded.wv.matrix, inline.wv.matrix)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(threaded.output_table.embeddings),
        keras.ops.convert_to_numpy(inline.output_table.embeddings))
    assert threaded.running_training_loss == inline.running_training_loss
    assert threaded.running_training_loss > 0


def test_an_error_in_the_steps_thread_stops_train():
    corpus = planted_corpus(100)
    model = Word2Vec(vector_size=4, min_count=1, verbose=0)
    model.build_vocab(corpus)

    def failing(*arrays):
        raise RuntimeError("the steps failed")

    model._step = failing
    with pytest.raises(RuntimeError, match="the steps failed"):
        model.train(corpus)
    assert not [t for t in threading.enumerate()
                if t.name.startswith("word2vec-steps")]


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="JAX's compiled steps consume (donate) the tables "
                    "they update: its calls run one at a time (next test)")
def test_workers_step_the_same_tables_at_once():
    """`workers=2`: two calls of steps run at once (each waits at a
    barrier until the other has started: one thread would time out), on
    the same tables, and the planted groups are found as with one."""
    import warnings

    corpus = planted_corpus()
    # 38,400 examples: 3 dispatches of 4 calls on TensorFlow, 10 on PyTorch.
    model = Word2Vec(vector_size=16, window=3, min_count=1, sg=0, sample=0,
                     epochs=16, seed=1, verbose=0, workers=2)
    model.build_vocab(corpus)
    filters = list(warnings.filters)
    threads = torch_threads()
    barrier = threading.Barrier(2, timeout=60)
    calls = []
    step = model._step

    def meeting(*arrays):
        if len(calls) < 2:
            calls.append(threading.current_thread().name)
            barrier.wait()
        return step(*arrays)

    model._step = meeting
    model.train(corpus)
    assert len(set(calls)) == 2
    assert neighbour_in_group_rate(model.wv) >= 0.9
    assert model.running_training_loss > 0
    # Process-wide settings the threads touch are as they were.
    assert warnings.filters == filters
    assert torch_threads() == threads


def torch_threads():
    """PyTorch's intra-op thread count (None on other backends)."""
    if keras.backend.backend() != "torch":
        return None
    import torch

    return torch.get_num_threads()


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="PyTorch and TensorFlow step one table in two "
                    "threads (previous test)")
def test_workers_on_jax_warn_and_train_one_call_at_a_time():
    corpus = planted_corpus(400)
    kwargs = dict(vector_size=8, window=2, min_count=1, sg=1, sample=0,
                  epochs=2, verbose=0)
    with pytest.warns(UserWarning, match=r"workers=2\) trains one call"):
        two = Word2Vec(corpus, workers=2, **kwargs)
    one = Word2Vec(corpus, **kwargs)
    np.testing.assert_array_equal(two.wv.matrix, one.wv.matrix)
    assert two.running_training_loss == one.running_training_loss


def test_bag_sum_is_the_weighted_sum_of_the_rows():
    """CBOW's input, fused where the backend can (PyTorch's
    `embedding_bag`), equals the gathered rows' weighted sum up to
    rounding; bags of one id (skip-gram) are left to the gather."""
    from keras_embedlab import backend

    table = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    ids = np.array([[1, 2, 0], [3, 3, 5]], "int32")
    weights = np.array([[0.5, 0.5, 0.0], [1.0, 2.0, 3.0]], "float32")
    tensors = [keras.ops.convert_to_tensor(x) for x in (table, ids,
                                                        weights)]
    fused = backend.bag_sum(*tensors)
    if fused is None:
        pytest.skip("no fused weighted row sum on this backend: "
                    "`_compute` gathers the rows")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused),
                               (table[ids] * weights[..., None]).sum(1),
                               rtol=1e-6)
    assert backend.bag_sum(tensors[0], tensors[1][:, :1],
                           tensors[2][:, :1]) is None
