"""Loading vectors straight into an int8 table aligned to a vocabulary.

NumPy only. `load_int8` reads a vectors file through the same pipeline as
`load_vectors` (`_pipeline.read_rows`: same detection, readers, stop rule;
its `StreamingCollector` has `Collector`'s duplicate and non-finite
rules) but never keeps float rows beyond one chunk of the file: each
chunk's rows go to an `_Int8Table`, quantized at once (Keras's per-row
abs-max, which is row-local) and written into an int8 matrix aligned to
the vocabulary, with its float32 scales. Alignment follows `align.align`:
exact token first (wherever it is in the file), else the lowercased form,
first of duplicates; OOV rows are made as `align` makes them and then
quantized. The statistics `oov="mean"` and `"random"` need are accumulated
in float64 as rows pass (per row: sum and centred sum of squares; per
column: sums), weighted at the end by how many vocabulary rows took each
file row.

The result equals `align` followed by Keras's `quantize("int8")` bit for
bit: the quantization is the same NumPy arithmetic, and the float rows
are the same. The one exception: `align` sums the statistics in another
order, so `mean`/`std` may differ in the last bit of a float64; a float32
OOV row differs only if a value lies that close to a rounding boundary.
"""

import collections

import numpy as np

from keras_embedlab.utils.argument_checks import check_choice
from keras_embedlab.vectors._collect import StreamingCollector
from keras_embedlab.vectors._load import load_vectors
from keras_embedlab.vectors._pipeline import (
    check_arguments,
    check_path,
    read_rows,
)
from keras_embedlab.vectors._source import Source
from keras_embedlab.vectors.align import (
    OOV_TOKEN,
    SPECIAL_TOKENS,
    Coverage,
    NoOverlapError,
    check_oov,
    no_overlap_message,
)

# Text is read this many bytes at a time (not `CHUNK_SIZE`): a chunk's
# parse temporaries are about 14 bytes a byte of text, 7 MB for 512 KiB,
# a quarter of a 100,000 x 300 int8 table; 128 KiB costs no measurable time.
READ_BYTES = 1 << 17
# OOV rows are drawn and quantized this many at a time (a block's float64
# temporaries are about 40 bytes a value).
OOV_BLOCK_ROWS = 256


def quantize_rows(rows, epsilon):
    """`(int8 rows, float32 scales)`: Keras's AbsMaxQuantizer with
    `to_numpy=True` on `axis=-1`, the same NumPy operations in order."""
    scale = np.divide(127, np.add(np.max(np.abs(rows), axis=-1,
                                         keepdims=True), epsilon))
    q = np.clip(np.round(np.multiply(rows, scale)), -127, 127)
    return q.astype("int8"), scale[:, 0]


class _Wanted:
    """The words whose rows are parsed: `set(tokens)` and, with the
    fallback, their lowercased forms (as `from_file` asks `load_vectors`
    for), without building that set: the table's dictionaries hold it."""

    def __init__(self, table, tokens):
        self.exact, self.lower = table.exact, table.lower
        self.special = {t for t in SPECIAL_TOKENS if t in tokens}
        if table.lowercase_fallback:
            self.special |= {t.lower() for t in self.special}
        self.size = len(self.exact) + len(self.lower) + len(self.special)

    def __contains__(self, word):
        return (word in self.exact or word in self.lower
                or word in self.special)

    def __len__(self):
        return self.size


class _Seen:
    """The words a `StreamingCollector` has kept (its `index`), as flags:
    one byte per vocabulary row for the exact tokens (`exact`), a set for
    the rest (lowercase forms that are not tokens, special tokens), so
    that no dictionary of the file's words is built."""

    def __init__(self, exact, size):
        self.exact = exact
        self.flags = bytearray(size)
        self.others = set()

    def __contains__(self, word):
        i = self.exact.get(word)
        return word in self.others if i is None else bool(self.flags[i])

    def __setitem__(self, word, _):
        i = self.exact.get(word)
        if i is None:
            self.others.add(word)
        else:
            self.flags[i] = 1

    def __delitem__(self, word):
        i = self.exact.get(word)
        if i is None:
            self.others.discard(word)
        else:
            self.flags[i] = 0


class _Int8Table:
    """The int8 table being filled, and the statistics for OOV rows: the
    sink of a `StreamingCollector` (`start(dim)`, then `add(words, rows)`
    for each chunk's kept rows)."""

    def __init__(self, tokens, lowercase_fallback, epsilon, colsums,
                 index=None):
        n = len(tokens)
        self.tokens, self.epsilon = tokens, epsilon
        self.lowercase_fallback = lowercase_fallback
        self.colsums = colsums
        # Token -> row, special tokens included (never given a file row).
        self.exact = ({token: i for i, token in enumerate(tokens)}
                      if index is None else index)
        self.lower = collections.defaultdict(list)
        for i, token in enumerate(tokens):
            if token in SPECIAL_TOKENS:
                continue
            if lowercase_fallback and token.lower() != token:
                self.lower[token.lower()].append(i)
        self.seen = _Seen(self.exact, n)  # the collector's kept words
        self.source = np.full(n, -1, np.int64)  # the kept row row i took
        self.is_exact = np.zeros(n, bool)
        self.kept = 0  # rows kept so far
        self.row_sum, self.row_m2 = [], []
        # Kept word -> how many rows took it by lowercase, then their own.
        self.corrections = collections.Counter()
        self.dim = self.q = self.scale = self.colsum = None

    def start(self, dim):
        """Allocates the table once the file's `dim` is known."""
        n = len(self.tokens)
        self.dim = dim
        self.q = _aligned_zeros((n, dim), np.int8)
        _, zero_scale = quantize_rows(np.zeros((1, dim), np.float32),
                                      self.epsilon)
        self.scale = np.full(n, zero_scale[0], np.float32)
        self.colsum = np.zeros(dim, np.float64) if self.colsums else None

    def add(self, words, rows):
        pairs, weights, taken = [], [], []
        for j, word in enumerate(words):
            targets = []
            i = self.exact.get(word)
            if i is not None and word not in SPECIAL_TOKENS:
                if self.source[i] >= 0:  # Had its lowercase form's row.
                    self.corrections[word.lower()] += 1
                self.is_exact[i] = True
                targets.append(i)
            targets += [i for i in self.lower.get(word, ())
                        if not self.is_exact[i]]
            if targets:
                self.source[targets] = self.kept
                self.kept += 1
                pairs += [(i, j) for i in targets]
                weights.append(len(targets))
                taken.append(j)
        if not taken:
            return
        rows = rows[taken]
        q, scale = quantize_rows(rows, self.epsilon)
        where = {j: n for n, j in enumerate(taken)}
        rows_to = np.array([i for i, _ in pairs], np.intp)
        rows_from = np.array([where[j] for _, j in pairs], np.intp)
        self.q[rows_to] = q[rows_from]
        self.scale[rows_to] = scale[rows_from]
        wide = rows.astype(np.float64)
        sums = wide.sum(axis=1)
        means = sums / self.dim
        self.row_sum.append(sums)
        self.row_m2.append(np.square(wide - means[:, None]).sum(axis=1))
        if self.colsum is not None:
            self.colsum += np.asarray(weights, np.float64) @ wide

    def finish(self, oov, seed, reread, words_seen, lowercase_fallback):
        tokens = self.tokens
        found = np.flatnonzero(self.source >= 0)
        if not found.size:
            raise NoOverlapError(no_overlap_message(
                tokens, "the vectors", "the vectors start with", words_seen,
                lowercase_fallback))
        missing, oov_ids = [], []
        for i, token in enumerate(tokens):
            if token == OOV_TOKEN:
                oov_ids.append(i)
            elif token not in SPECIAL_TOKENS and self.source[i] < 0:
                missing.append(token)
                oov_ids.append(i)
        lowercase = int((~self.is_exact[found]).sum())
        if oov_ids and oov != "zeros":
            self._oov_rows(np.array(oov_ids, np.intp), found, oov, seed,
                           reread)
        coverage = Coverage(len(found), len(found) + len(missing), lowercase,
                            missing)
        return self.q, self.scale, coverage

    def _oov_rows(self, oov_ids, found, oov, seed, reread):
        limit = float(np.finfo(np.float32).max)
        if oov == "mean":
            colsum = self.colsum
            if self.corrections:  # Rows that lost a token to its exact row.
                lost = self.corrections
                vectors = reread(set(lost))
                for word, count in lost.items():
                    colsum -= count * vectors[word].astype(np.float64)
            mean = colsum / len(found)
            row = np.clip(mean, -limit, limit).astype(np.float32)[None]
            q, scale = quantize_rows(row, self.epsilon)
            self.q[oov_ids] = q
            self.scale[oov_ids] = scale[0]
            return
        weights = np.bincount(self.source[found], minlength=self.kept)
        sums = np.concatenate(self.row_sum)
        m2 = np.concatenate(self.row_m2)
        count = len(found) * self.dim
        mean = float(weights @ sums) / count
        spread = np.square(sums / self.dim - mean) * self.dim
        std = float(np.sqrt(float(weights @ (m2 + spread)) / count))
        rng = np.random.default_rng(seed)
        for start in range(0, len(oov_ids), OOV_BLOCK_ROWS):
            ids = oov_ids[start:start + OOV_BLOCK_ROWS]
            rows = rng.normal(mean, std, (len(ids), self.dim))
            rows = np.clip(rows, -limit, limit).astype(np.float32)
            self.q[ids], self.scale[ids] = quantize_rows(rows, self.epsilon)


def _aligned_zeros(shape, dtype, alignment=64):
    """`np.zeros(shape, dtype)` whose data starts on an `alignment`-byte
    boundary, so that a backend may adopt the buffer without copying it
    (JAX does for 64-byte aligned host arrays)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(size + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + size].view(dtype).reshape(shape)


def load_int8(path, tokens, epsilon, format="auto", oov="random",
              lowercase_fallback=True, limit=None, encoding="utf-8",
              unicode_errors="strict", verbose="auto", seed=1337,
              nonfinite="error", index=None):
    """`(int8 matrix, float32 scales, Coverage)` of `path` aligned to
    `tokens` (a checked list), as `align` then Keras's int8 quantization
    would give them. `epsilon` is `keras.backend.epsilon()`.
    `nonfinite="keep"` is refused: int8 has no NaN or infinity.
    `index`: `{token: row}` of `tokens` if the caller has it (the layer
    keeps it: one dictionary over the vocabulary, not two); read only."""
    name = check_path(path)
    verbose = check_arguments(format, limit, encoding, unicode_errors,
                              verbose)
    check_choice("nonfinite", nonfinite, ("error", "skip"))
    check_oov(oov)
    with Source(path, name, READ_BYTES) as source:
        table = _Int8Table(tokens, lowercase_fallback, epsilon,
                           colsums=oov == "mean", index=index)
        collector = StreamingCollector(name, _Wanted(table, tokens),
                                       encoding, unicode_errors, nonfinite,
                                       table)
        read_rows(source, format, limit, verbose, collector)
        words_seen = collector.result()  # Its warnings (duplicates, ...).

    def reread(words):
        return load_vectors(path, format=format, vocabulary=words,
                            limit=limit, encoding=encoding,
                            unicode_errors=unicode_errors, verbose=0,
                            nonfinite=nonfinite)

    return table.finish(oov, seed, reread, words_seen, lowercase_fallback)
