"""fastText's word vectors, for many words at once, with NumPy.

A word's vector is the average of input-matrix rows: its own row when the
word is in the model's dictionary, and one row per character n-gram of
`"<" + word + ">"` with `minn` to `maxn` characters. Characters are counted
in UTF-8 as fastText does: a byte `0b10xxxxxx` (a continuation byte) does
not start one. The n-grams of one character that are `"<"` or `">"` are
left out. An n-gram's row is `nwords + fnv1a(bytes) % bucket`, where
fastText's 32-bit FNV-1a hash xors each byte sign-extended (as a C `int8`)
to 32 bits. The word `"</s>"` (end of sentence) has no n-grams. A word's
bytes are its UTF-8, except that U+DC80-U+DCFF stand for the bytes 0x80 to
0xFF (`word_bytes`), for words that are not valid UTF-8.

The rows are read from the file through a read-only map, in windows of
`WINDOW_BYTES`, each given back to the system once read, so memory follows
the words asked for, not the matrix.
"""

import mmap

import numpy as np

WINDOW_BYTES = 16 << 20
# Pairs of (word, row) gathered at once within a window.
GATHER_ROWS = 1 << 14
EOS = "</s>"
_FNV_OFFSET = np.uint32(2166136261)
_FNV_PRIME = np.uint32(16777619)
# Each byte as fastText xors it: int8, sign-extended to uint32.
_SIGNED = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.uint32)
_CONTINUATION = (np.arange(256) & 0xC0) == 0x80


def word_bytes(word):
    """The bytes fastText hashes for `word`: UTF-8, a character U+DC80 to
    U+DCFF being the byte it stands for (as `_fasttext` decodes a word that
    is not valid UTF-8); other lone surrogates as 3 bytes each."""
    try:
        return word.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return word.encode("utf-8", "surrogatepass")


def ngram_buckets(words, minn, maxn, bucket):
    """`(owner, buckets)` for the n-grams of `words` (str): `owner[k]` is
    the index in `words` of n-gram `k` and `buckets[k]` its bucket. None
    when `maxn < minn`, `maxn == 0` or `bucket == 0`."""
    empty = np.zeros(0, np.int64)
    if not words or bucket == 0 or maxn == 0 or maxn < max(minn, 1):
        return empty, empty
    encoded = [b"<" + word_bytes(w) + b">" if w != EOS else b""
               for w in words]
    lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    ends = np.cumsum(lengths)
    data = np.frombuffer(b"".join(encoded) + b"\0", np.uint8)
    starts = np.flatnonzero(~_CONTINUATION[data[:-1]])
    owner = np.searchsorted(ends, starts, side="right")
    end = ends[owner]
    first = starts == end - lengths[owner]  # the "<" of each word
    hashes = np.full(len(starts), _FNV_OFFSET, np.uint32)
    pos = starts.copy()
    alive = np.arange(len(starts))
    found = []
    for n in range(1, maxn + 1):
        alive = alive[pos[alive] < end[alive]]
        if not len(alive):
            break
        step = alive
        while len(step):  # one character: its first byte, continuations
            h = hashes[step] ^ _SIGNED[data[pos[step]]]
            hashes[step] = h * _FNV_PRIME
            pos[step] += 1
            step = step[(pos[step] < end[step])
                        & _CONTINUATION[data[pos[step]]]]
        if n >= minn:
            keep = alive
            if n == 1:
                keep = keep[~first[keep] & (pos[keep] != end[keep])]
            found.append((keep, hashes[keep] % np.uint32(bucket)))
    if not found:
        return empty, empty
    index = np.concatenate([k for k, _ in found])
    buckets = np.concatenate([b for _, b in found]).astype(np.int64)
    return owner[index], buckets


def rows_of(model, words, index):
    """`(owner, rows, known)`: the input-matrix rows averaged for each of
    `words` (`rows[k]` for `words[owner[k]]`), and whether each word is in
    the model's dictionary (`index`: word to id)."""
    ids = np.array([index.get(w, -1) for w in words], np.int64)
    known = np.flatnonzero(ids >= 0)
    owner, buckets = ngram_buckets(words, model.minn, model.maxn,
                                   model.bucket)
    owner = np.concatenate([known, owner])
    rows = np.concatenate([ids[known], model.nwords + buckets])
    return owner, rows, ids >= 0


def average_rows(model, owner, rows, count):
    """`(matrix, counts)`: row `i` of `matrix` (float32, `(count, dim)`) is
    the mean of the input-matrix rows `rows[owner == i]`; zeros where
    `counts` is 0. Reads only those rows, window by window."""
    dim = model.dim
    sums = np.zeros((count, dim), np.float32)
    counts = np.bincount(owner, minlength=count)
    if len(rows):
        order = np.argsort(rows, kind="stable")
        owner, rows = owner[order], rows[order]
        with open(model.path, "rb") as f:
            _accumulate(f, model, owner, rows, sums)
    scale = np.zeros(count, np.float32)
    scale[counts > 0] = (1.0 / counts[counts > 0]).astype(np.float32)
    sums *= scale[:, None]
    return sums, counts


def _accumulate(f, model, owner, rows, sums):
    row_bytes = 4 * model.dim
    page = mmap.ALLOCATIONGRANULARITY
    per_window = max(WINDOW_BYTES // row_bytes, 1)
    first, last = int(rows[0]), int(rows[-1])
    for start in range(first - first % per_window, last + 1, per_window):
        lo, hi = np.searchsorted(rows, [start, start + per_window])
        if lo == hi:
            continue
        begin = model.offset + int(rows[lo]) * row_bytes
        stop = model.offset + (int(rows[hi - 1]) + 1) * row_bytes
        base = begin - begin % page
        with mmap.mmap(f.fileno(), stop - base, access=mmap.ACCESS_READ,
                       offset=base) as window:
            # Rows as bytes: a row of the file need not be 4-byte aligned.
            table = np.frombuffer(window, np.uint8, stop - begin,
                                  begin - base).reshape(-1, row_bytes)
            for a in range(lo, hi, GATHER_ROWS):
                b = min(a + GATHER_ROWS, hi)
                _add_rows(sums, owner[a:b], table, rows[a:b] - rows[lo])
            del table


def _add_rows(sums, owner, table, rows):
    """`sums[owner[k]] += table[rows[k]]` (as float32) for every `k`.

    A window holds few rows of the same word: the pairs are added in
    layers, the first row of each word, then the second, ..., each layer
    one indexed add without repeats (`np.add.at` and `np.add.reduceat`
    are several times slower on such short runs).
    """
    order = np.argsort(owner, kind="stable")
    owner, rows = owner[order], rows[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    rank = np.arange(len(owner)) - np.repeat(starts, np.diff(
        np.r_[starts, len(owner)]))
    for k in range(int(rank.max()) + 1):
        layer = rank == k
        sums[owner[layer]] += table[rows[layer]].view(np.float32)
