"""`Word2Vec`: skip-gram and CBOW with negative sampling on our tables."""

import collections
import concurrent.futures
import os
import time
import warnings
from typing import Any, Iterable

import keras
import numpy as np
from keras import ops

from keras_embedlab import backend
from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.utils.argument_checks import (
    check_int_at_least,
    check_number_at_least,
)
from keras_embedlab.vectors import Vectors
from keras_embedlab.word2vec import _corpus

# Examples per call of the compiled steps (one dispatch on JAX and
# TensorFlow): a step's fixed cost (~0.4 ms on JAX CPU) is paid once per
# call, not per step.
_EXAMPLES_PER_CALL = 4096


def _interleave(examples, steps):
    """`examples` (steps * batch, ...) in consecutive order as
    (steps, batch, ...), example `j` in step `j % steps`.

    A step's examples all read the tables as they were at its start, and
    their updates of one row add up. Consecutive examples share rows (a
    CBOW context row is in the windows of up to `2 * window` neighbouring
    words; a skip-gram center is the target of up to `2 * window` pairs),
    so a step of consecutive examples sums many stale updates of the same
    rows, where gensim applies them one after the other. Dealt out this
    way, examples less than `steps` apart never share a step."""
    batch = len(examples) // steps
    return np.ascontiguousarray(np.swapaxes(
        examples.reshape(batch, steps, *examples.shape[1:]), 0, 1))


def _step_arrays(inputs, targets, lr):
    """The per-example constants of `_compute`, made in NumPy for a whole
    call of steps at once (fewer operations per compiled or eager step).

    `inputs` (..., c): input-table ids, `-1` for none (CBOW's short
    windows, padding); `targets` (..., 1 + negative): the word to predict,
    then the negatives; `lr` (...): each example's learning rate, 0 for
    padding. Returns `inputs` with padding as row 0, `in_weights` (1 /
    context size for a context row, 0 for padding: the mean,
    `cbow_mean=1`), `in_mask` (1 for a context row), `targets`, `signs`
    (+1 for the target, -1 for a negative, 0 for a negative equal to the
    target, which gensim skips, and for padding) and `scaled`
    (`signs * lr`).
    """
    mask = inputs >= 0
    count = np.maximum(mask.sum(axis=-1, keepdims=True), 1)
    signs = np.full(targets.shape, -1.0, np.float32)
    signs[..., 0] = 1.0
    signs[..., 1:][targets[..., 1:] == targets[..., :1]] = 0.0
    signs *= (lr > 0)[..., None]
    return (np.maximum(inputs, 0).astype(np.int32),
            (mask / count).astype(np.float32), mask.astype(np.float32),
            targets.astype(np.int32), signs,
            signs * lr[..., None].astype(np.float32))


def _compute(tables, inputs, in_weights, in_mask, targets, signs, scaled):
    """Updates of one step of examples (`_step_arrays`'s arrays), as rows
    to add to each table, and the summed loss.

    The loss and the updates are gensim's: the input is the weighted sum
    of the context rows (their mean), the logit's sign is the label's, and
    every context row gets the whole input error.
    """
    table_in, table_out = tables
    # Skip-gram's one input row is its hidden layer (weight 1; a padding
    # example reads row 0, and its zero signs make its loss and updates
    # zeros): no product and sum per step.
    one_input = inputs.shape[-1] == 1
    hidden = (backend.gather_rows(table_in, inputs[:, 0]) if one_input
              else backend.bag_sum(table_in, inputs, in_weights))
    if hidden is None:
        rows_in = backend.gather_rows(table_in, inputs)
        hidden = ops.sum(rows_in * in_weights[..., None], axis=1)
    rows_out = backend.gather_rows(table_out, targets)
    # Products and sums rather than `einsum`: tiny batched matmuls are
    # slow on CPU. `z`: the logit, negated for a negative.
    z = ops.sum(hidden[:, None, :] * rows_out, axis=-1) * signs
    loss = -ops.sum(ops.log_sigmoid(z) * ops.abs(signs))
    # d(log sigmoid(z)) / d(logit) * lr = sign * sigmoid(-z) * lr.
    g = ops.sigmoid(-z) * scaled
    out_rows = g[..., None] * hidden[:, None, :]
    error = ops.sum(g[..., None] * rows_out, axis=1)
    # A padding example's error is zeros (its `g` is).
    in_rows = error if one_input else error[:, None, :] * in_mask[..., None]
    dim = out_rows.shape[-1]
    return [(ops.reshape(inputs, (-1,)), ops.reshape(in_rows, (-1, dim))),
            (ops.reshape(targets, (-1,)),
             ops.reshape(out_rows, (-1, dim)))], loss


class _StepThreads:
    """Runs calls of the compiled steps in `n` threads, in the order they
    are made, while the calling thread makes the next call's examples (in
    NumPy).

    With `n=1` a call starts when the one before has ended: the tables
    end as if each call ran where it was made. JAX dispatches its compiled
    calls asynchronously already; PyTorch and TensorFlow run theirs in the
    caller, which made the examples and ran the steps one after the other.
    With `n > 1`, up to `n` calls run at once on the same tables
    (`Word2Vec(workers=n)`).
    """

    def __init__(self, n):
        self.n = n
        self.pool = concurrent.futures.ThreadPoolExecutor(
            n, thread_name_prefix="word2vec-steps")
        self.running = collections.deque()

    def submit(self, step, arrays):
        """Starts `step(*arrays)` once fewer than `n` calls run; returns
        the results of the calls it waited for, oldest first."""
        done = []
        while len(self.running) >= self.n:
            done.append(self.running.popleft().result())
        self.running.append(self.pool.submit(step, *arrays))
        return done

    def wait(self):
        """The results of the running calls once they have ended."""
        done = [future.result() for future in self.running]
        self.running.clear()
        return done

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


class Word2Vec:
    """Word2vec (skip-gram or CBOW, negative sampling) on two
    `LookupEmbedding` tables, on every Keras backend.

    The arguments, their defaults and the training procedure are gensim's
    `Word2Vec`: vocabulary by `min_count`, most frequent word first;
    frequent-word subsampling with `sample`; negatives drawn from
    count**0.75; a reduced window (uniform reach in `1..window`); a
    learning rate decaying linearly from `alpha` to `min_alpha` over all
    words of all epochs. Examples of `batch_words` corpus words are made
    at once in NumPy, and `batch_size` examples are trained per compiled
    step, which reads and writes only the rows it uses (the tables are
    `sparse=True` `LookupEmbedding`s: `input_table`, the word vectors, and
    `output_table`, gensim's `syn1neg`). Examples within a step see the
    tables as they were at its start (gensim updates after every example),
    and updates of one row within a step add up; so that a step holds no
    two neighbouring examples (which share rows), the examples of a call
    of `steps` steps are dealt out, example `j` to step `j % steps`, with
    `steps >= 2 * window + 1`.

    Args:
        corpus: Optional; trains at once (`build_vocab` then `train`).
        vector_size: Dimension of the word vectors.
        window: Largest distance between a word and its context word.
        min_count: Words seen fewer times are left out.
        sg: 1 for skip-gram, 0 for CBOW (the context mean predicts the
            word).
        negative: Negative words drawn per example (at least 1).
        ns_exponent: Exponent of the counts of the negative distribution.
        sample: Subsampling threshold (0 turns it off), as gensim.
        alpha, min_alpha: Learning rate at the start and at the end.
        epochs: Passes over the corpus.
        seed: Seeds initial vectors, subsampling, windows and negatives:
            the same corpus and seed train the same vectors on a backend.
        batch_words: Corpus words whose examples are made together (one
            learning rate for them, as a gensim job).
        batch_size: Examples per compiled step. Smaller is closer to
            gensim's example-by-example updates, and slower on PyTorch
            (planted-corpus CBOW over 30 seeds: 256 scores 0.646, 128
            0.657, 64 0.662, 32 0.664, gensim 0.675 +- 0.025; see
            benchmarks/RESULTS.md section 9).
        workers: Threads running calls of steps at once (gensim's name).
            1: one call at a time, and the vectors depend on the seed only.
            More: up to `workers` calls at once on the same tables, as
            gensim's workers: without locks on PyTorch (Hogwild: two
            threads adding to one row at the same instant may lose one
            update); on TensorFlow the compiled call holds the variables'
            locks while it runs, so whole calls take turns and only the
            work around them overlaps; the vectors then depend on the
            threads' timing too. On JAX the compiled steps consume
            (donate) the tables they update, so its calls run one at a
            time (with a warning).
        verbose: 1 shows a progress bar per epoch (words/s, loss), 0 none.

    Attributes: `wv` (a `Vectors` of the input table), `running_training_loss`
    (the last `train`'s summed loss, in float64: gensim's float32 tally
    saturates), `words_per_second`, `effective_words`.

    Example:
    ```python
    model = Word2Vec([["a", "b", "c"]] * 100, vector_size=8, min_count=1)
    model.wv.most_similar("a")
    ```
    """

    def __init__(self, corpus: Any = None, vector_size: int = 100,
                 window: int = 5, min_count: int = 5, sg: int = 0,
                 negative: int = 5, ns_exponent: float = 0.75,
                 sample: float = 1e-3, alpha: float = 0.025,
                 min_alpha: float = 0.0001, epochs: int = 5, seed: int = 1,
                 batch_words: int = 10000, batch_size: int = 128,
                 workers: int = 1, verbose: int = 1) -> None:
        self.vector_size = check_int_at_least("vector_size", vector_size, 1)
        self.window = check_int_at_least("window", window, 1)
        self.min_count = check_int_at_least("min_count", min_count, 1)
        if sg not in (0, 1) or isinstance(sg, float):
            raise ValueError(
                f"`sg` must be 1 (skip-gram) or 0 (CBOW). Received: sg={sg!r}")
        self.sg = int(sg)
        self.negative = check_int_at_least("negative", negative, 1)
        self.ns_exponent = check_number_at_least(
            "ns_exponent", ns_exponent, 0.0)
        self.sample = check_number_at_least("sample", sample, 0.0)
        self.alpha = check_number_at_least("alpha", alpha, 0.0, strict=True)
        self.min_alpha = check_number_at_least("min_alpha", min_alpha, 0.0)
        self.epochs = check_int_at_least("epochs", epochs, 1)
        self.seed = check_int_at_least("seed", seed, 0)
        self.batch_words = check_int_at_least("batch_words", batch_words, 1)
        self.batch_size = check_int_at_least("batch_size", batch_size, 1)
        self.workers = check_int_at_least("workers", workers, 1)
        self.verbose = check_int_at_least("verbose", verbose, 0)
        if self.workers > 1 and not backend.CONCURRENT_ROW_STEPS:
            warnings.warn(
                f"Word2Vec(workers={self.workers}) trains one call of steps "
                f"at a time on the {keras.backend.backend()} backend, whose "
                f"compiled steps cannot update one table from two threads "
                f"at once (backend.CONCURRENT_ROW_STEPS). Pass workers=1 to "
                f"silence this warning.", stacklevel=2)
        # Steps per compiled call: about _EXAMPLES_PER_CALL examples, and
        # enough steps to deal neighbouring examples into different ones.
        self.steps_per_call = max(-(-_EXAMPLES_PER_CALL // self.batch_size),
                                  2 * self.window + 1)
        self.index_to_key = None
        self._step_threads = None
        self.running_training_loss = 0.0
        self.effective_words = 0
        self.words_per_second = None
        if corpus is not None:
            self.build_vocab(corpus)
            self.train(corpus)

    def build_vocab(self, corpus: str | os.PathLike | Iterable) -> None:
        """Counts the corpus's words (one pass) and makes the tables."""
        corpus = _corpus.check_corpus(corpus)
        raw, total, n_sentences = _corpus.scan_vocab(corpus)
        words, counts = _corpus.sorted_vocab(raw, self.min_count)
        if not words:
            raise ValueError(
                f"The corpus has no word seen at least min_count="
                f"{self.min_count} times ({len(raw)} distinct words, "
                f"{total} words, {n_sentences} sentences): nothing to "
                f"train. Lower `min_count` or pass a larger corpus.")
        self.index_to_key = words
        self.key_to_index = {w: i for i, w in enumerate(words)}
        self.counts = counts
        self.corpus_total_words = total
        self.corpus_count = n_sentences
        self.keep = _corpus.keep_probabilities(counts, self.sample)
        self.cum_table = _corpus.cum_table(counts, self.ns_exponent)
        rng = np.random.default_rng(self.seed)
        dim = self.vector_size
        # gensim 4's `prep_vectors`: uniform in [-1/dim, 1/dim).
        initial = ((rng.random((len(words), dim)) * 2.0 - 1.0) / dim
                   ).astype("float32")
        self.input_table = LookupEmbedding(
            len(words), dim, sparse=True, name="word_vectors",
            embeddings_initializer=keras.initializers.Constant(initial))
        self.output_table = LookupEmbedding(
            len(words), dim, sparse=True, name="output_vectors",
            embeddings_initializer="zeros")
        self.input_table.build((None,))
        self.output_table.build((None,))
        self._row_step = backend.row_step(
            _compute, [self.input_table.embeddings,
                       self.output_table.embeddings])

    @property
    def wv(self) -> Vectors:
        """The word vectors (the input table) with their words."""
        if self.index_to_key is None:
            raise ValueError("No vocabulary yet: call `build_vocab(corpus)` "
                             "or `train(corpus)` first.")
        matrix = ops.convert_to_numpy(self.input_table.embeddings)
        return Vectors(self.index_to_key, np.asarray(matrix, np.float32))

    def get_latest_training_loss(self) -> float:
        return self.running_training_loss

    def train(self, corpus: str | os.PathLike | Iterable,
              epochs: int | None = None) -> float:
        """Trains on `corpus` (builds the vocabulary first if there is
        none); returns the summed training loss (float64).

        The learning rate decays over `epochs` passes of the word count
        `build_vocab` found (gensim's `total_words`); a file is read again
        line by line each epoch.
        """
        corpus = _corpus.check_corpus(corpus)
        if self.index_to_key is None:
            self.build_vocab(corpus)
        epochs = self.epochs if epochs is None else check_int_at_least(
            "epochs", epochs, 1)
        rng = np.random.default_rng(self.seed + 1)
        maker = _corpus.ExampleMaker(
            self.key_to_index, self.keep, self.cum_table, self.window,
            self.sg, self.negative, self.sample, rng)
        self.running_training_loss = 0.0
        self.effective_words = 0
        pending = []  # (inputs, targets, lr) waiting for a full step
        losses = []
        start = time.perf_counter()
        self._step_threads = _StepThreads(
            self.workers if backend.CONCURRENT_ROW_STEPS else 1)
        try:
            done = self._epochs(corpus, epochs, maker, pending, losses,
                                start)
            for step_losses in self._step_threads.wait():
                self._add_losses(step_losses, losses)
        finally:
            self._step_threads.close()
            self._step_threads = None
        self._tally(losses)
        self.effective_words = maker.effective_words
        elapsed = time.perf_counter() - start
        self.train_seconds = elapsed
        self.trained_words = done
        self.words_per_second = done / max(elapsed, 1e-9)
        return self.running_training_loss

    def _epochs(self, corpus, epochs, maker, pending, losses, start):
        """`train`'s passes over the corpus; returns the words read."""
        total = self.corpus_total_words
        done = 0
        for epoch in range(epochs):
            bar = (keras.utils.Progbar(total, stateful_metrics=[
                "words/s", "loss"], unit_name="word")
                if self.verbose else None)
            if bar is not None:
                print(f"Epoch {epoch + 1}/{epochs}")
            seen = 0
            for chunk, size in self._chunks(corpus):
                lr = _corpus.learning_rate(
                    self.alpha, self.min_alpha,
                    (epoch + seen / max(total, 1)) / epochs)
                inputs, targets = maker.examples(chunk)
                if len(targets):
                    pending.append((inputs, targets, np.full(
                        len(targets), lr, np.float32)))
                pending = self._run_full_steps(pending, losses)
                seen += size
                done += size
                if bar is not None:
                    self._tally(losses)
                    elapsed = time.perf_counter() - start
                    bar.update(min(seen, total), values=[
                        ("words/s", done / max(elapsed, 1e-9)),
                        ("loss", self.running_training_loss)])
        self._run_full_steps(pending, losses, flush=True)
        return done

    def _chunks(self, corpus):
        chunk, size = [], 0
        for sentence in _corpus.sentences(corpus):
            chunk.append(sentence)
            size += len(sentence)
            if size >= self.batch_words:
                yield chunk, size
                chunk, size = [], 0
        if chunk:
            yield chunk, size

    def _run_full_steps(self, pending, losses, flush=False):
        """Runs the pending examples in calls of `steps` steps of
        `batch_size` examples (`_interleave`), `backend.ROW_STEP_CALLS`
        calls at a time (one after the other, in one dispatch of the
        compiled steps); keeps the rest, or pads it with unused examples
        (learning rate 0, whose updates and loss are zeros) when
        `flush`."""
        b = self.batch_size
        steps = self.steps_per_call
        call = b * steps
        calls = backend.ROW_STEP_CALLS
        group = call * calls
        available = sum(len(p[1]) for p in pending)
        if not pending or (available < group and not flush):
            return pending
        width = max(p[0].shape[1] for p in pending)
        inputs = np.concatenate([np.pad(p[0], ((0, 0), (
            0, width - p[0].shape[1])), constant_values=-1)
            for p in pending])
        targets = np.concatenate([p[1] for p in pending])
        lr = np.concatenate([p[2] for p in pending])
        if flush and len(lr) % group:
            pad = group - len(lr) % group
            inputs = np.pad(inputs, ((0, pad), (0, 0)), constant_values=-1)
            targets = np.pad(targets, ((0, pad), (0, 0)))
            lr = np.pad(lr, (0, pad))
        full = len(lr) // group * group
        for i in range(0, full, group):
            arrays = tuple(np.concatenate([
                _interleave(x[j:j + call], steps)
                for j in range(i, i + group, call)])
                for x in (inputs, targets, lr))
            if self._step_threads is None:
                self._add_losses(self._step(*arrays), losses)
                continue
            # `train`: the steps run while the next call is made.
            for step_losses in self._step_threads.submit(self._step,
                                                         arrays):
                self._add_losses(step_losses, losses)
        rest = (inputs[full:], targets[full:], lr[full:])
        return [rest] if len(rest[2]) else []

    def _add_losses(self, step_losses, losses):
        """Adds a dispatch's step losses to `losses`."""
        calls = backend.ROW_STEP_CALLS
        if calls == 1:
            losses.append(step_losses)
        else:  # One entry per call: the tally sums the same arrays.
            steps = self.steps_per_call
            losses.extend(step_losses[k * steps:(k + 1) * steps]
                          for k in range(calls))

    def _step(self, inputs, targets, lr):
        """Trains on `(steps, batch, ...)` examples, one step after the
        other; returns each step's summed loss."""
        return self._row_step(*_step_arrays(inputs, targets, lr))

    def _tally(self, losses):
        # float64 on the host: each step's float32 sum is small.
        self.running_training_loss += sum(
            float(np.sum(ops.convert_to_numpy(x), dtype=np.float64))
            for x in losses)
        losses.clear()

    def save_word2vec_format(self, path: str | os.PathLike,
                             binary: bool = False) -> None:
        """Writes the word vectors as word2vec text or binary (gensim's
        name); `load_vectors` and gensim read them."""
        self.wv.save(path, "word2vec-binary" if binary else "word2vec-text")
