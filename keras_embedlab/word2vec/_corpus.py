"""Word2vec's data side, in NumPy: corpus, vocabulary, sampling, examples.

Each definition follows gensim's `Word2Vec` (gensim 4): the vocabulary
order (`sort_by_descending_frequency`), the subsampling keep probability
(`prepare_vocab`'s `sample_int`), the negative table (`make_cum_table`,
count**0.75), the reduced window (`b` uniform in `[0, window)`, reach
`window - b`) and the learning rate (`_get_next_alpha`). Examples are
made for a whole chunk of sentences at once, without a per-word loop.
"""

import itertools
import os
import types

import numpy as np

# gensim's `MAX_WORDS_IN_BATCH`: longer sentences are cut to this many
# words after subsampling, as gensim does.
MAX_SENTENCE_LEN = 10000
_DOMAIN = 2**31 - 1


def check_corpus(corpus):
    """Returns a re-iterable corpus: a path or a non-iterator iterable."""
    if isinstance(corpus, (str, os.PathLike)):
        path = os.fspath(corpus)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"`corpus` names no file. Received: corpus={path!r}. Pass a "
                "text file with one sentence per line, or a list of token "
                "lists.")
        return path
    if isinstance(corpus, (types.GeneratorType, map, filter, zip)) or (
            hasattr(corpus, "__next__") and iter(corpus) is corpus):
        raise TypeError(
            "`corpus` must be re-iterable: training reads it once for the "
            "vocabulary and once per epoch, and a generator or iterator is "
            "used up after one pass. Pass a list of token lists, a path to "
            "a text file, or an object whose `__iter__` starts over. "
            f"Received: corpus of type {type(corpus).__name__}")
    if not hasattr(corpus, "__iter__"):
        raise TypeError(
            "`corpus` must be a path to a text file or an iterable of token "
            f"lists. Received: corpus of type {type(corpus).__name__}")
    return corpus


def sentences(corpus):
    """Yields each sentence as a list of str tokens, streaming a file."""
    if isinstance(corpus, str):
        with open(corpus, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                yield line.split()
        return
    for number, sentence in enumerate(corpus, 1):
        if isinstance(sentence, str):
            raise TypeError(
                "Each sentence of `corpus` must be a list of tokens, not a "
                f"string. Received: sentence {number} = {sentence[:40]!r}. "
                "Split it first (`line.split()`), or pass a file path.")
        yield sentence


def scan_vocab(corpus):
    """Raw counts in first-seen order, the number of words and sentences."""
    counts = {}
    total = 0
    n_sentences = 0
    for sentence in sentences(corpus):
        n_sentences += 1
        for word in sentence:
            counts[word] = counts.get(word, 0) + 1
        total += len(sentence)
    return counts, total, n_sentences


def sorted_vocab(raw_counts, min_count):
    """Words with `count >= min_count`, most frequent first, ties as gensim
    orders them (the later-seen word first), and their counts."""
    words = [w for w, c in raw_counts.items() if c >= min_count]
    counts = np.array([raw_counts[w] for w in words], dtype=np.int64)
    order = np.lexsort((-np.arange(len(counts)), -counts))
    return [words[i] for i in order], counts[order]


def keep_probabilities(counts, sample):
    """Each word's probability to be kept by subsampling, as gensim's
    `sample_int / 2**32` (uint32 of the probability times `2**32 - 1`)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if not sample:
        threshold = total
    elif sample < 1.0:
        threshold = sample * total
    else:
        threshold = int(sample * (3 + np.sqrt(5)) / 2)
    probability = (np.sqrt(counts / threshold) + 1) * (threshold / counts)
    probability = np.minimum(probability, 1.0)
    # gensim keeps a word when sample_int >= a uniform 32-bit integer.
    sample_int = (probability * (2**32 - 1)).astype(np.uint32)
    return (sample_int.astype(np.float64) + 1) / 2**32


def cum_table(counts, ns_exponent=0.75, domain=_DOMAIN):
    """gensim's negative-sampling table: cumulative count**0.75 scaled to
    `domain`; a word is drawn as the insertion point of a uniform integer."""
    powered = np.asarray(counts, dtype=np.float64) ** float(ns_exponent)
    cumulative = np.cumsum(powered)
    return np.round(cumulative / cumulative[-1] * domain).astype(np.int64)


def negative_sampler(table):
    """Walker's alias table of the distribution `cum_table` defines (word
    `i` has weight `table[i] - table[i - 1]`, as gensim's insertion-point
    draw gives it): `(probability, alias)` for `draw_negatives`. A draw
    costs two gathers; a binary search of the table (gensim's draw) took
    about 1.5x as long in NumPy (300,000 draws: 15 ms against 10 ms)."""
    weights = np.diff(np.asarray(table, np.float64), prepend=0.0)
    n = len(weights)
    probability = weights * (n / weights.sum())
    alias = np.arange(n, dtype=np.int32)
    small = [int(i) for i in np.flatnonzero(probability < 1.0)]
    large = [int(i) for i in np.flatnonzero(probability >= 1.0)]
    while small and large:
        low, high = small.pop(), large[-1]
        alias[low] = high
        probability[high] -= 1.0 - probability[low]
        if probability[high] < 1.0:
            small.append(large.pop())
    probability[small + large] = 1.0  # left over: rounding only
    return probability, alias


def draw_negatives(rng, sampler, shape):
    """Word ids drawn with probability count**0.75 / sum from
    `negative_sampler(cum_table(...))` (gensim's distribution)."""
    probability, alias = sampler
    column = rng.integers(0, len(alias), size=shape)
    return np.where(rng.random(shape) < probability[column], column,
                    alias[column]).astype(np.int32)


def learning_rate(alpha, min_alpha, progress):
    """gensim's linear decay: `alpha` at progress 0, `min_alpha` at 1."""
    return max(min_alpha, alpha - (alpha - min_alpha) * progress)


class ExampleMaker:
    """Turns chunks of sentences into training examples, vectorised.

    An example is `(inputs, target)`: skip-gram, one input word (the
    context word, gensim's `syn0` row) and the center word as target;
    CBOW, up to `2 * window` context words (padded with `-1`) and the
    center word as target. Negatives are drawn per example.
    """

    def __init__(self, key_to_index, keep, table, window, sg, negative,
                 sample, rng):
        self.key_to_index = key_to_index
        self.keep = keep
        self.sampler = negative_sampler(table)
        self.window = window
        self.sg = sg
        self.negative = negative
        self.sample = sample
        self.rng = rng
        self.effective_words = 0

    def ids(self, chunk):
        """In-vocabulary ids of a chunk after subsampling, and each kept
        word's sentence number (out-of-vocabulary words are dropped before
        the window, widening it, as gensim does)."""
        lengths = np.fromiter(map(len, chunk), np.int64, len(chunk))
        # One dictionary look-up per word, no per-sentence Python list.
        flat = np.fromiter(
            map(self.key_to_index.get, itertools.chain.from_iterable(chunk),
                itertools.repeat(-1)), np.int32, int(lengths.sum()))
        sentence_of = np.repeat(np.arange(len(lengths)), lengths)
        known = flat >= 0
        ids, sentence_of = flat[known], sentence_of[known]
        if self.sample and len(ids):
            kept = self.rng.random(len(ids)) < self.keep[ids]
            ids, sentence_of = ids[kept], sentence_of[kept]
        if len(ids) and lengths.max() > MAX_SENTENCE_LEN:
            # Cut sentences to MAX_SENTENCE_LEN kept words.
            starts = np.r_[0, np.flatnonzero(np.diff(sentence_of)) + 1]
            position = np.arange(len(ids)) - np.repeat(
                starts, np.diff(np.r_[starts, len(ids)]))
            short = position < MAX_SENTENCE_LEN
            ids, sentence_of = ids[short], sentence_of[short]
        return ids, sentence_of

    def examples(self, chunk):
        """`(inputs (n, c) int32, targets (n, 1 + negative) int32)`."""
        ids, sentence_of = self.ids(chunk)
        n = len(ids)
        self.effective_words += n
        window = self.window
        reach = window - self.rng.integers(0, window, size=n)
        # Each word's 2 * window neighbours, nearest-left to right in
        # position order, and whether the reduced window and the sentence
        # keep them.
        shifts = np.r_[np.arange(-window, 0), np.arange(1, window + 1)]
        other = np.arange(n)[:, None] + shifts
        inside = (other >= 0) & (other < n)
        other = np.where(inside, other, 0)
        ok = inside & (reach[:, None] >= np.abs(shifts)) & (
            sentence_of[other] == sentence_of[:, None])
        if self.sg:
            # gensim's order: by center position, then context position
            # (row-major order of `other`).
            center, column = np.nonzero(ok)
            inputs = ids[other[center, column]][:, None]
            target = ids[center]
        else:
            has_context = ok.any(axis=1)
            inputs = np.where(ok, ids[other], -1)[has_context]
            target = ids[has_context]
        negatives = draw_negatives(self.rng, self.sampler,
                                   (len(target), self.negative))
        targets = np.concatenate([target[:, None], negatives], axis=1)
        return inputs.astype(np.int32), targets.astype(np.int32)
